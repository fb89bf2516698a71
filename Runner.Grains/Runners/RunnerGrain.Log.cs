using Microsoft.Extensions.Logging;

namespace FalHints.Runner.Runners;

public sealed partial class RunnerGrain
{
    [LoggerMessage(1, LogLevel.Information, "Runner {RunnerId} activated with {AppCount} apps")]
    private static partial void LogActivated(ILogger logger, string runnerId, int appCount);

    [LoggerMessage(2, LogLevel.Warning, "App {AppId} failed request {RequestId} on runner {RunnerId}")]
    private static partial void LogAppFailed(ILogger logger, Exception exception, string appId, string requestId, string runnerId);

    [LoggerMessage(3, LogLevel.Error, "App {AppId} on runner {RunnerId} reported {Reported} hints; kept {Kept} (limits: {MaxHints} hints of at most {MaxHintLength} characters)")]
    private static partial void LogHintsTruncated(ILogger logger, string appId, string runnerId, int reported, int kept, int maxHints, int maxHintLength);

    [LoggerMessage(4, LogLevel.Warning, "Runner {RunnerId} could not publish hints for app {AppId}")]
    private static partial void LogPublishFailed(ILogger logger, Exception exception, string runnerId, string appId);
}
