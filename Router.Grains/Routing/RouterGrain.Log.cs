using Microsoft.Extensions.Logging;

namespace FalHints.Router.Routing;

public sealed partial class RouterGrain
{
    [LoggerMessage(1, LogLevel.Warning, "Runner {RunnerId} failed request {RequestId} (attempt {Attempt} of {MaxAttempts})")]
    private static partial void LogRunnerFailed(ILogger logger, Exception exception, string runnerId, string requestId, int attempt, int maxAttempts);
}
