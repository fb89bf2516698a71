namespace FalHints.Client.Contracts;

/// <summary>
/// A runner: one per device per silo, keyed <c>{silo}/{device}</c>, pinned to the silo it names.
/// Routers call it; callers go through the router.
/// </summary>
[Alias("falhints.IRunnerGrain")]
public interface IRunnerGrain : IGrainWithStringKey
{
    /// <summary>Activates the runner: sets up its apps and announces them (empty hints) on the hint stream.</summary>
    [Alias("StartAsync")]
    Task StartAsync();

    /// <summary>
    /// Accepts a request and returns at once; when it finishes the runner completes the request grain and tells
    /// the app's router, so no call stays open for the length of a model load. Returns the sequence of the runner's
    /// last event at acceptance: every event it makes later (a greater sequence) counts the request while it runs.
    /// </summary>
    [Alias("DispatchAsync")]
    Task<long> DispatchAsync(RunnerInvocation invocation);

    /// <summary>Runs one request and waits for it (no queue, no request grain); subject to the grain call timeout.</summary>
    [Alias("InvokeAsync")]
    Task<RunnerResponse> InvokeAsync(RunnerInvocation invocation);

    /// <summary>Signals the cancellation token of a running request.</summary>
    [Alias("CancelAsync")]
    Task CancelAsync(string requestId);

    /// <summary>Asks the app to load what <paramref name="hint"/> names ahead of traffic; the response's error is null on success.</summary>
    [Alias("PrewarmAsync")]
    Task<RunnerResponse> PrewarmAsync(string appId, string hint);

    /// <summary>Stops taking new work: announces itself as draining so routers stop sending to it. Requests it has keep running.</summary>
    [Alias("DrainAsync")]
    Task DrainAsync();

    /// <summary>True when the runner is running the request now (routers check requests they adopt after a restart).</summary>
    [Alias("IsRunningAsync")]
    Task<bool> IsRunningAsync(string requestId);

    /// <summary>Where the runner runs and what each of its apps holds now (no event is published).</summary>
    [Alias("GetStatusAsync")]
    Task<RunnerStatus> GetStatusAsync();
}
