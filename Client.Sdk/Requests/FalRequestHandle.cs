using FalHints.Client.Contracts;

namespace FalHints.Client.Requests;

/// <summary>A submitted request: its status, its result, and a way to cancel it.</summary>
public sealed class FalRequestHandle
{
    // Under Orleans' default 30 s grain call timeout.
    internal static readonly TimeSpan PollWait = TimeSpan.FromSeconds(20);

    // While a silo dies, calls to grains it hosted fail until the membership declares it dead and they reactivate
    // elsewhere; Orleans' own detection takes some tens of seconds.
    private static readonly TimeSpan TransientRetryDelay = TimeSpan.FromSeconds(1);
    private const int MaxTransientFailures = 90;

    private static readonly TimeSpan StatusPollInterval = TimeSpan.FromMilliseconds(250);

    internal FalRequestHandle(IRequestGrain grain, string requestId, RequestStatus? submitted = null) =>
        (Grain, RequestId, Submitted) = (grain, requestId, submitted);

    /// <summary>The request's id.</summary>
    public string RequestId { get; }

    /// <summary>The status the request had when it was submitted (null for a handle made from an id).</summary>
    public RequestStatus? Submitted { get; }

    internal IRequestGrain Grain { get; }

    /// <summary>The current status: queued (with position), in progress, or completed.</summary>
    public Task<RequestStatus> GetStatusAsync(CancellationToken cancellationToken = default) =>
        Grain.GetStatusAsync().WaitAsync(cancellationToken);

    /// <summary>
    /// Waits up to <paramref name="maxWait"/> (at most 25 s) for the request to complete, returning as soon as it does,
    /// then returns its status: a long poll that costs one call instead of many.
    /// </summary>
    public Task<RequestStatus> WaitAsync(TimeSpan maxWait, CancellationToken cancellationToken = default) =>
        Grain.WaitAsync(maxWait).WaitAsync(cancellationToken);

    /// <summary>
    /// Waits for the request to complete and returns its result; cancelling the token cancels the request. Calls that
    /// fail while a silo is dying are retried (for up to about 90 s), since the request's state outlives the silo.
    /// </summary>
    public async Task<InferenceResult> GetResultAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            return (await WaitForCompletionAsync(cancellationToken).ConfigureAwait(false)).Result!;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            await Grain.CancelAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// Waits for the request to complete and returns its final status (with the result). Unlike
    /// <see cref="GetResultAsync(CancellationToken)"/>, cancelling the token ends only the wait, not the request. Calls
    /// that fail while a silo is dying are retried in the same way.
    /// </summary>
    public async Task<RequestStatus> WaitForCompletionAsync(CancellationToken cancellationToken = default)
    {
        while (true)
        {
            var status = await RetryTransientAsync(() => Grain.WaitAsync(PollWait), cancellationToken).ConfigureAwait(false);
            if (status.State == RequestState.Completed)
            {
                return status;
            }
        }
    }

    /// <summary>Waits for the request and returns its typed output, or throws the <see cref="FalRequestException"/> that names the failure.</summary>
    public async Task<TOutput> GetResultAsync<TOutput>(CancellationToken cancellationToken = default)
    {
        var result = await GetResultAsync(cancellationToken).ConfigureAwait(false);
        return FalHintsClient.OutputOf<TOutput>(result);
    }

    /// <summary>
    /// The request's status each time it changes (queued with its position, in progress, completed), ending with the
    /// completed status.
    /// </summary>
    public async IAsyncEnumerable<RequestStatus> StreamStatusAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        RequestStatus? last = null;
        while (true)
        {
            var status = await RetryTransientAsync(() => Grain.GetStatusAsync(), cancellationToken).ConfigureAwait(false);
            if (last is null || status.State != last.State || status.QueuePosition != last.QueuePosition || status.RunnerId != last.RunnerId)
            {
                yield return status;
                last = status;
            }

            if (status.State == RequestState.Completed)
            {
                yield break;
            }

            // A short wait that returns early when the request completes.
            await RetryTransientAsync(() => Grain.WaitAsync(StatusPollInterval), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Cancels the request: a queued request leaves the queue, a running one has its cancellation token signalled.</summary>
    public Task<RequestStatus> CancelAsync(CancellationToken cancellationToken = default) =>
        Grain.CancelAsync().WaitAsync(cancellationToken);

    /// <summary>
    /// Runs a call to a grain, retrying while the cluster reports transient failures (a silo leaving, a call timing
    /// out, a grain lookup cancelled while the cluster's directory changes hands). Safe for the request grain's calls:
    /// submitting the same request again returns its status. Cancelling <paramref name="cancellationToken"/> is never
    /// retried.
    /// </summary>
    internal static async Task<T> RetryTransientAsync<T>(Func<Task<T>> call, CancellationToken cancellationToken, TimeSpan? retryDelay = null)
    {
        for (var failures = 0; ; failures++)
        {
            try
            {
                return await call().WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (failures < MaxTransientFailures && !cancellationToken.IsCancellationRequested
                && ClusterFailures.IsTransient(ex))
            {
                await Task.Delay(retryDelay ?? TransientRetryDelay, cancellationToken).ConfigureAwait(false);
            }
        }
    }
}
