using FalHints.Client.Contracts;
using Microsoft.Extensions.Logging;

namespace FalHints.Router.Requests;

/// <summary>
/// A request store that can list the requests it holds that were accepted and have not finished, so a node that
/// restarts can hand them to their routers again (SQLite; Redis through an index of unfinished requests).
/// </summary>
public interface IUnfinishedRequests
{
    /// <summary>The ids of the stored requests that are queued or running, or finished with a webhook still owed, oldest accepted first.</summary>
    Task<IReadOnlyList<string>> ListUnfinishedAsync(CancellationToken cancellationToken);
}

/// <summary>
/// When the silo starts, activates every unfinished request of the store, one after the other in the order they were
/// accepted. Each request grain, as it activates, reminds its router of itself: a queued request is queued again at
/// its original place and priority, a running one is checked with its runner and retried if the runner no longer has
/// it (as when a runner dies); a finished one whose webhook is still owed delivers it. The silo's start waits for
/// this, so requests submitted after the restart queue behind. When another silo dies, the oldest live silo does the
/// same again in the background: the requests that lived on the dead silo and that nothing else calls (a finished
/// request waiting to retry its webhook) come back on a live one.
/// </summary>
internal sealed partial class RequestRecovery(IUnfinishedRequests store, IGrainFactory grains, IClusterMembershipService membership,
    ILocalSiloDetails silo, ILogger<RequestRecovery> logger) : ILifecycleParticipant<ISiloLifecycle>, IDisposable
{
    private readonly CancellationTokenSource _stopping = new();
    private Task _watching = Task.CompletedTask;

    public void Participate(ISiloLifecycle lifecycle) =>
        lifecycle.Subscribe(nameof(RequestRecovery), ServiceLifecycleStage.Active + 1, StartAsync, StopAsync);

    private async Task StartAsync(CancellationToken cancellationToken)
    {
        await ResumeAllAsync(cancellationToken);
        _watching = WatchForDeathsAsync(_stopping.Token);
    }

    private async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync();
        await _watching;
    }

    public void Dispose() => _stopping.Dispose();

    private async Task WatchForDeathsAsync(CancellationToken cancellationToken)
    {
        var dead = Dead(membership.CurrentSnapshot);
        try
        {
            await foreach (var snapshot in membership.MembershipUpdates.WithCancellation(cancellationToken))
            {
                var now = Dead(snapshot);
                var died = now.Except(dead).Count();
                dead = now;
                if (died > 0 && IsOldestActive(snapshot))
                {
                    LogSiloDied(logger, died);
                    await ResumeAllAsync(cancellationToken);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The silo stops.
        }
        catch (Exception ex)
        {
            // Requests still come back when next asked for, or at the next start.
            LogWatchFailed(logger, ex);
        }
    }

    private static HashSet<SiloAddress> Dead(ClusterMembershipSnapshot snapshot) =>
        [.. snapshot.Members.Values.Where(m => m.Status == SiloStatus.Dead).Select(m => m.SiloAddress)];

    // One silo sweeps after a death, not all of them.
    private bool IsOldestActive(ClusterMembershipSnapshot snapshot) =>
        snapshot.Members.Values.Where(m => m.Status == SiloStatus.Active).Select(m => m.SiloAddress).Min() is { } oldest
        && oldest.Equals(silo.SiloAddress);

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

    [LoggerMessage(1, LogLevel.Information, "Resuming {Count} unfinished requests of the store")]
    private static partial void LogResuming(ILogger logger, int count);

    [LoggerMessage(2, LogLevel.Warning, "Request {RequestId} could not be resumed; it resumes when next asked for")]
    private static partial void LogResumeFailed(ILogger logger, Exception exception, string requestId);

    [LoggerMessage(4, LogLevel.Warning, "Could not list the unfinished requests of the store; each resumes when next asked for")]
    private static partial void LogListFailed(ILogger logger, Exception exception);

    [LoggerMessage(3, LogLevel.Information, "Resumed {Resumed} of {Count} unfinished requests of the store")]
    private static partial void LogResumed(ILogger logger, int resumed, int count);

    [LoggerMessage(6, LogLevel.Warning, "Stopped watching for silos that die; their requests resume when next asked for or at the next start")]
    private static partial void LogWatchFailed(ILogger logger, Exception exception);

    [LoggerMessage(5, LogLevel.Information, "{Count} silos died: resuming the unfinished requests of the store, so those that lived there come back")]
    private static partial void LogSiloDied(ILogger logger, int count);
}
