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

    /// <summary>Runs one request of one app on this runner and reports the hints it holds afterwards.</summary>
    [Alias("InvokeAsync")]
    Task<RunnerResponse> InvokeAsync(RunnerInvocation invocation);

    /// <summary>Where the runner runs and what each of its apps holds now (no event is published).</summary>
    [Alias("GetStatusAsync")]
    Task<RunnerStatus> GetStatusAsync();
}
