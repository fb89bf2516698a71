using FalHints.Client.Contracts;
using Microsoft.Extensions.Logging;

namespace FalHints.Router.Routing;

public sealed partial class RouterGrain
{
    [LoggerMessage(1, LogLevel.Information, "Router of {AppId} activated with policy {Policy}")]
    private static partial void LogActivated(ILogger logger, string appId, string policy);

    [LoggerMessage(2, LogLevel.Warning, "Dispatching request {RequestId} (attempt {Attempt}) to runner {RunnerId} failed")]
    private static partial void LogDispatchFailed(ILogger logger, Exception exception, string runnerId, string requestId, int attempt);

    [LoggerMessage(3, LogLevel.Warning, "Runner {RunnerId} dropped from the index of {AppId}: {Reason}; {Requests} requests in flight there")]
    private static partial void LogRunnerLost(ILogger logger, string runnerId, string appId, string reason, int requests);

    [LoggerMessage(4, LogLevel.Warning, "Request {RequestId} could not be told of its progress")]
    private static partial void LogRequestUnreachable(ILogger logger, Exception exception, string requestId);

    [LoggerMessage(5, LogLevel.Information, "Request {RequestId} of {AppId} resumed after a router restart ({State})")]
    private static partial void LogResumed(ILogger logger, string requestId, string appId, RequestState state);

    [LoggerMessage(7, LogLevel.Warning, "Runner {RunnerId} did not confirm its state")]
    private static partial void LogConfirmFailed(ILogger logger, Exception exception, string runnerId);

    [LoggerMessage(8, LogLevel.Warning, "Could not ask runner {RunnerId} about request {RequestId}; asking again later")]
    private static partial void LogCheckFailed(ILogger logger, Exception exception, string runnerId, string requestId);

    [LoggerMessage(9, LogLevel.Warning, "Request {RequestId} completed on runner {RunnerId} without the router being told; its slot is free again")]
    private static partial void LogCompletionUnreported(ILogger logger, string requestId, string runnerId);

    [LoggerMessage(10, LogLevel.Warning, "Runner {RunnerId} no longer has request {RequestId}, which has not completed; retrying it")]
    private static partial void LogRequestMissing(ILogger logger, string requestId, string runnerId);

    [LoggerMessage(6, LogLevel.Warning, "Prewarming {Hint} on runner {RunnerId} failed: {Reason}")]
    private static partial void LogPrewarmFailed(ILogger logger, Exception? exception, string runnerId, string hint, string reason);

    [LoggerMessage(11, LogLevel.Warning, "Runner {RunnerId} refused to prewarm {Hint} for {AppId} ({Reason}); the policy asks for no more background loads for this app")]
    private static partial void LogPolicyPrewarmsOff(ILogger logger, string appId, string runnerId, string hint, string reason);

    [LoggerMessage(12, LogLevel.Warning, "Router of {AppId} could not read the app's declaration from the app registry; it learns the hint field from the runners' reports")]
    private static partial void LogDeclarationUnread(ILogger logger, Exception exception, string appId);
}
