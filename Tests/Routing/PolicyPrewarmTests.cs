using System.Text.Json;
using FalHints.Client.Contracts;
using FalHints.Client.Requests;
using FalHints.Runner.Hosting;
using FalHints.Tests.Runners;
using FalHints.Tests.Support;

namespace FalHints.Tests.Routing;

/// <summary>One silo, two runners, the default policy, an app that prewarms and one that refuses to.</summary>
public sealed class PolicyPrewarmProfile : IClusterProfile
{
    public void ConfigureSilo(ISiloBuilder silo) => silo.AddFalApp<GatedLoadApp>().AddFalApp<NoPrewarmApp>();
}

/// <summary>The router acts on the background loads its policy asks for, and stops asking an app that refuses them.</summary>
public sealed class PolicyPrewarmTests(FalHintsCluster<PolicyPrewarmProfile> cluster) : IClassFixture<FalHintsCluster<PolicyPrewarmProfile>>
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private static string Input(string key, string? hold = null) => JsonSerializer.Serialize(new KeyInput(key, hold), FalJson.Options);

    private async Task RunAsync(string appId, string key)
    {
        var result = await cluster.Client.SubmitAsync(appId, Input(key), key).WaitAsync(Patience);
        Assert.Null(result.Error);
    }

    /// <summary>
    /// Keeps one runner busy with a request of <paramref name="appId"/> that waits for a gate, so the policy copies
    /// nothing (the other runner is the last free one) and every request goes to the other runner; returns the gate
    /// and the request.
    /// </summary>
    private async Task<(TaskCompletionSource Gate, FalRequestHandle Request)> OccupyOneRunnerAsync(string appId)
    {
        var (key, hold) = ($"busy-{Guid.NewGuid():N}", $"hold-{Guid.NewGuid():N}");
        GatedLoadApp.Gate(key).SetResult();
        var handle = await cluster.Client.EnqueueAsync(appId, Input(key, hold), key).WaitAsync(Patience);
        await Eventually.StatusAsync(handle, s => s.State == RequestState.InProgress, Patience, "running");
        return (GatedLoadApp.Gate(hold), handle);
    }

    [Fact]
    public async Task A_model_in_demand_is_copied_in_the_background_onto_a_runner_that_frees_up()
    {
        var router = cluster.Cluster.Client.GetGrain<IRouterGrain>(GatedLoadApp.Id);
        var (gate, busy) = await OccupyOneRunnerAsync(GatedLoadApp.Id);
        var key = $"hot-{Guid.NewGuid():N}";
        GatedLoadApp.Gate(key).SetResult();

        // Twice on the free runner (a miss, then a hit); then the busy one frees up, and nothing more is sent.
        await RunAsync(GatedLoadApp.Id, key);
        await RunAsync(GatedLoadApp.Id, key);
        gate.SetResult();
        Assert.Null((await busy.GetResultAsync().WaitAsync(Patience)).Error);

        var snapshot = await Eventually.ValueAsync(router.GetSnapshotAsync, s => s.Runners.Count(r => r.Hints.Contains(key)) == 2, Patience,
            $"both runners holding {key}");

        // No request loaded the second copy: the only misses are the first request of each key.
        Assert.Equal(2, snapshot.Misses);
    }

    [Fact]
    public async Task An_app_that_refuses_a_prewarm_is_not_asked_again()
    {
        var (gate, busy) = await OccupyOneRunnerAsync(NoPrewarmApp.Id);
        var key = $"hot-{Guid.NewGuid():N}";
        await RunAsync(NoPrewarmApp.Id, key);
        await RunAsync(NoPrewarmApp.Id, key);
        gate.SetResult();
        Assert.Null((await busy.GetResultAsync().WaitAsync(Patience)).Error);
        await Eventually.ValueAsync(() => Task.FromResult(NoPrewarmApp.Refused), n => n >= 1, Patience, "a prewarm refused");

        // Had the refusal not turned the policy's background loads off, the next completion or heartbeat (1 s) would
        // have asked the same runner again: the model is still in demand, and that runner still does not hold it.
        await RunAsync(NoPrewarmApp.Id, key);
        await Task.Delay(TimeSpan.FromSeconds(1.5));
        Assert.Equal(1, NoPrewarmApp.Refused);
    }
}
