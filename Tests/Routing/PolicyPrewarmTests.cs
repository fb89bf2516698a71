using System.Text.Json;
using FalHints.Client.Contracts;
using FalHints.Client.Requests;
using FalHints.Router.Placement;
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

    private static string Input(string key) => JsonSerializer.Serialize(new KeyInput(key), FalJson.Options);

    private async Task RunAsync(string appId, string key)
    {
        var result = await cluster.Client.SubmitAsync(appId, Input(key), key).WaitAsync(Patience);
        Assert.Null(result.Error);
    }

    [Fact]
    public async Task A_model_in_demand_is_copied_in_the_background_onto_the_idle_runner()
    {
        var key = $"hot-{Guid.NewGuid():N}";
        GatedLoadApp.Gate(key).SetResult();
        var router = cluster.Cluster.Client.GetGrain<IRouterGrain>(GatedLoadApp.Id);

        // One after another on one runner (all but the first hits), with the other runner idle and its memory unused,
        // until the policy looks for a copy to make again.
        for (var i = 0; i < SpareCopies.LookEvery + 2; i++)
        {
            await RunAsync(GatedLoadApp.Id, key);
        }

        var snapshot = await Eventually.ValueAsync(router.GetSnapshotAsync, s => s.Runners.Count(r => r.Hints.Contains(key)) == 2, Patience,
            $"both runners holding {key}");
        Assert.Equal(1, snapshot.Misses);
    }

    [Fact]
    public async Task An_app_that_refuses_a_prewarm_is_not_asked_again()
    {
        var key = $"hot-{Guid.NewGuid():N}";
        for (var i = 0; i < SpareCopies.LookEvery + 5; i++)
        {
            await RunAsync(NoPrewarmApp.Id, key);
        }

        // The policy asked once the key was in demand; had the refusal not turned its background loads off, it would have
        // asked again after the next completions (each ask reaches the runner within milliseconds of one).
        await Eventually.ValueAsync(() => Task.FromResult(NoPrewarmApp.Refused), n => n >= 1, Patience, "a prewarm refused");
        await Task.Delay(TimeSpan.FromMilliseconds(500));
        Assert.Equal(1, NoPrewarmApp.Refused);
    }
}
