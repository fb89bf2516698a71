namespace FalHints.Client.Contracts;

/// <summary>
/// One request, keyed by its id: it holds the request's state (in grain storage, so it outlives a router's
/// restart) and answers status, wait and cancel. Routers and runners report to it.
/// </summary>
[Alias("falhints.IRequestGrain")]
public interface IRequestGrain : IGrainWithStringKey
{
    /// <summary>Accepts the request and hands it to its app's router; resubmitting the same id returns its status.</summary>
    [Alias("SubmitAsync")]
    Task<RequestStatus> SubmitAsync(InferenceRequest request);

    /// <summary>
    /// Accepts the request like <see cref="SubmitAsync"/>, then waits like <see cref="WaitAsync"/>: a caller that wants
    /// the result makes one call, answered as soon as the request completes (or after <paramref name="maxWait"/>).
    /// </summary>
    [Alias("SubmitAndWaitAsync")]
    Task<RequestStatus> SubmitAndWaitAsync(InferenceRequest request, TimeSpan maxWait);

    /// <summary>The status, with the queue position while queued.</summary>
    [Alias("GetStatusAsync")]
    Task<RequestStatus> GetStatusAsync();

    /// <summary>
    /// Returns when the request completes or after <paramref name="maxWait"/> (at most 25 s, and 1 s while the silo hosting
    /// the request stops, so a long poll never holds up its exit), whichever is first.
    /// </summary>
    [Alias("WaitAsync")]
    Task<RequestStatus> WaitAsync(TimeSpan maxWait);

    /// <summary>Cancels: a queued request leaves the queue, a running one has its cancellation token signalled.</summary>
    [Alias("CancelAsync")]
    Task<RequestStatus> CancelAsync();

    /// <summary>Router: the request was dispatched to a runner from the queue (a start at submission comes with the enqueue's answer).</summary>
    [Alias("StartedAsync")]
    Task StartedAsync(string runnerId, bool hintHit, int attempt);

    /// <summary>
    /// Router: attempt <paramref name="lostAttempt"/> of the request, on runner <paramref name="lostRunnerId"/>, was lost
    /// and the request is queued again. A notice that arrives after a later attempt started is only logged.
    /// </summary>
    [Alias("RequeuedAsync")]
    Task RequeuedAsync(string lostRunnerId, int lostAttempt, string reason);

    /// <summary>Runner or router: the request finished; the first completion wins.</summary>
    [Alias("CompleteAsync")]
    Task CompleteAsync(InferenceResult result);
}
