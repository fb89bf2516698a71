using Microsoft.Extensions.Logging;

namespace FalHints.Router.Requests;

public sealed partial class RequestGrain
{
    [LoggerMessage(1, LogLevel.Warning, "Request {RequestId} could not reach the router of {AppId}; it will try again")]
    private static partial void LogRouterUnreachable(ILogger logger, Exception exception, string requestId, string appId);
}
