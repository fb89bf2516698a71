using FalHints.Client.Contracts;

namespace FalHints.Client.Requests;

/// <summary>A submitted request: its status, its result, and a way to cancel it.</summary>
public sealed class FalRequestHandle
{
    // Under Orleans' default 30 s grain call timeout.
    private static readonly TimeSpan PollWait = TimeSpan.FromSeconds(20);

    internal FalRequestHandle(IRequestGrain grain, string requestId) => (Grain, RequestId) = (grain, requestId);

    /// <summary>The request's id.</summary>
    public string RequestId { get; }

    internal IRequestGrain Grain { get; }

    /// <summary>The current status: queued (with position), in progress, or completed.</summary>
    public Task<RequestStatus> GetStatusAsync(CancellationToken cancellationToken = default) =>
        Grain.GetStatusAsync().WaitAsync(cancellationToken);

    /// <summary>Waits for the request to complete and returns its result; cancelling the token cancels the request.</summary>
    public async Task<InferenceResult> GetResultAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            while (true)
            {
                var status = await Grain.WaitAsync(PollWait).WaitAsync(cancellationToken).ConfigureAwait(false);
                if (status.State == RequestState.Completed)
                {
                    return status.Result!;
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            await Grain.CancelAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Cancels the request: a queued request leaves the queue, a running one has its cancellation token signalled.</summary>
    public Task<RequestStatus> CancelAsync(CancellationToken cancellationToken = default) =>
        Grain.CancelAsync().WaitAsync(cancellationToken);
}
