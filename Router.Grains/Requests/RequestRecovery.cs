using FalHints.Client.Contracts;
using Microsoft.Extensions.Logging;

namespace FalHints.Router.Requests;

/// <summary>
/// A request store that can list the requests it holds that were accepted and have not finished, so a node that
/// restarts can hand them to their routers again (SQLite; Redis through an index of unfinished requests).
/// </summary>
public interface IUnfinishedRequests
{
    /// <summary>The ids of the stored requests that are queued or running, oldest accepted first.</summary>
    Task<IReadOnlyList<string>> ListUnfinishedAsync(CancellationToken cancellationToken);
}

/// <summary>
/// When the silo starts, activates every unfinished request of the store, one after the other in the order they were
/// accepted. Each request grain, as it activates, reminds its router of itself: a queued request is queued again at
/// its original place and priority, a running one is checked with its runner and retried if the runner no longer has
/// it (as when a runner dies). The silo's start waits for this, so requests submitted after the restart queue behind.
/// </summary>
internal sealed partial class RequestRecovery(IUnfinishedRequests store, IGrainFactory grains, ILogger<RequestRecovery> logger)
    : ILifecycleParticipant<ISiloLifecycle>
{
    public void Participate(ISiloLifecycle lifecycle) =>
        lifecycle.Subscribe(nameof(RequestRecovery), ServiceLifecycleStage.Active + 1, ResumeAllAsync, _ => Task.CompletedTask);

    private async Task ResumeAllAsync(CancellationToken cancellationToken)
    {
        IReadOnlyList<string> unfinished;
        try
        {
            unfinished = await store.ListUnfinishedAsync(cancellationToken);
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            // The store does not answer now (Redis down): each request resumes when next asked for.
            LogListFailed(logger, ex);
            return;
        }

        if (unfinished.Count == 0)
        {
            return;
        }

        LogResuming(logger, unfinished.Count);
        var failed = 0;
        foreach (var requestId in unfinished)
        {
            try
            {
                await grains.GetGrain<IRequestGrain>(requestId).GetStatusAsync().WaitAsync(cancellationToken);
            }
            catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
            {
                // Its own resume timer, or its caller's next poll, brings it back.
                failed++;
                LogResumeFailed(logger, ex, requestId);
            }
        }

        LogResumed(logger, unfinished.Count - failed, unfinished.Count);
    }

    [LoggerMessage(1, LogLevel.Information, "Resuming {Count} requests accepted before this node stopped")]
    private static partial void LogResuming(ILogger logger, int count);

    [LoggerMessage(2, LogLevel.Warning, "Request {RequestId} could not be resumed at start; it resumes when next asked for")]
    private static partial void LogResumeFailed(ILogger logger, Exception exception, string requestId);

    [LoggerMessage(4, LogLevel.Warning, "Could not list the requests accepted before this node started; each resumes when next asked for")]
    private static partial void LogListFailed(ILogger logger, Exception exception);

    [LoggerMessage(3, LogLevel.Information, "Resumed {Resumed} of {Count} requests accepted before this node stopped")]
    private static partial void LogResumed(ILogger logger, int resumed, int count);
}
