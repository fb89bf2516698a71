using Microsoft.Extensions.Logging;

namespace FalHints.Router.Requests;

public sealed partial class RequestGrain
{
    [LoggerMessage(1, LogLevel.Warning, "Request {RequestId} could not reach the router of {AppId}; it will try again")]
    private static partial void LogRouterUnreachable(ILogger logger, Exception exception, string requestId, string appId);

    [LoggerMessage(2, LogLevel.Warning, "Request {RequestId} was missing from the request store (emptied?); its record was written back")]
    private static partial void LogRecordRestored(ILogger logger, Exception exception, string requestId);

    [LoggerMessage(3, LogLevel.Warning, "Request {RequestId} completed, but its result could not be stored; it will try again")]
    private static partial void LogCompletionUnstored(ILogger logger, Exception exception, string requestId);

    [LoggerMessage(4, LogLevel.Information, "Request {RequestId}: its result is stored, after a failed write")]
    private static partial void LogCompletionStored(ILogger logger, string requestId);
}
