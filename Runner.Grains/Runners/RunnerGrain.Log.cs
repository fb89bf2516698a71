using Microsoft.Extensions.Logging;

namespace FalHints.Runner.Runners;

public sealed partial class RunnerGrain
{
    [LoggerMessage(1, LogLevel.Information, "Runner {RunnerId} activated with {AppCount} apps, a pipeline budget of {BudgetBytes} bytes and a host budget of {HostBudgetBytes} bytes")]
    private static partial void LogActivated(ILogger logger, string runnerId, int appCount, long budgetBytes, long hostBudgetBytes);

    [LoggerMessage(2, LogLevel.Warning, "App {AppId} failed request {RequestId} on runner {RunnerId}")]
    private static partial void LogAppFailed(ILogger logger, Exception exception, string appId, string requestId, string runnerId);

    [LoggerMessage(3, LogLevel.Error, "App {AppId} on runner {RunnerId} reported {Reported} {What}; refused the excess and kept the first {Kept} (limits: {MaxHints} entries of at most {MaxHintLength} characters)")]
    private static partial void LogHintsTruncated(ILogger logger, string appId, string runnerId, string what, int reported, int kept, int maxHints, int maxHintLength);

    [LoggerMessage(5, LogLevel.Warning, "Request {RequestId} finished but its {Party} could not be told")]
    private static partial void LogReportFailed(ILogger logger, Exception exception, string requestId, string party);

    [LoggerMessage(6, LogLevel.Information, "Runner {RunnerId} is draining: no new work; {Running} requests still running")]
    private static partial void LogDraining(ILogger logger, string runnerId, int running);

    [LoggerMessage(4, LogLevel.Warning, "Runner {RunnerId} could not publish hints for app {AppId}")]
    private static partial void LogPublishFailed(ILogger logger, Exception exception, string runnerId, string appId);

    [LoggerMessage(8, LogLevel.Warning, "App {AppId} kept its lease on pipeline {Key} after request {RequestId} on runner {RunnerId} ended; the runner released it (dispose pipeline leases when done)")]
    private static partial void LogLeaseLeaked(ILogger logger, string appId, string key, string requestId, string runnerId);

    [LoggerMessage(9, LogLevel.Warning, "A partial output of request {RequestId} on runner {RunnerId} could not be published ({Reason}); its streaming caller misses it")]
    private static partial void LogPartialFailed(ILogger logger, string requestId, string runnerId, string reason);
}
