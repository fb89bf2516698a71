using System.Text.Json;
using FalHints.Client.Contracts;
using FalHints.Client.Requests;
using FalHints.Runner.Hosting;
using FalHints.Tests.Runners;
using FalHints.Tests.Support;

namespace FalHints.Tests.Routing;

/// <summary>One silo, two runners, fast resumes, with an app that declares a hint field.</summary>
public sealed class DeclaredHintProfile : IClusterProfile
{
    public IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["FalHints:Router:ResumeInterval"] = "00:00:00.500",
        ["FalHints:Router:SweepInterval"] = "00:00:00.200",
    };

    public void ConfigureSilo(ISiloBuilder silo) => silo.AddFalApp<HintFieldApp>();
}

/// <summary>Runners that report only when they start and after responses (no heartbeats during a test).</summary>
public sealed class SilentRunnersProfile : IClusterProfile
{
    public IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["FalHints:Runners:HeartbeatInterval"] = "01:00:00",
    };

    public void ConfigureSilo(ISiloBuilder silo) => silo.AddFalApp<HintFieldApp>();
}

/// <summary>The hint an app's hint field gives a request without one, before the router has heard from any runner.</summary>
public sealed class DeclaredHintAtStartTests(FalHintsCluster<SilentRunnersProfile> cluster) : IClassFixture<FalHintsCluster<SilentRunnersProfile>>
{
    [Fact]
    public async Task A_routers_first_request_gets_the_hint_the_app_declares_before_any_runner_reports()
    {
        // A new activation, and no runner event on its way to it (both start events arrived before): the app's
        // registration is all it has.
        var router = cluster.Cluster.Client.GetGrain<IRouterGrain>(HintFieldApp.Id);
        await Eventually.ValueAsync(router.GetSnapshotAsync, s => s.Runners.Length == 2, TimeSpan.FromSeconds(30), "both runners announced");
        await cluster.Cluster.DeactivateAsync(router);
        var key = $"first-{Guid.NewGuid():N}";

        var handle = await cluster.Client.EnqueueAsync(HintFieldApp.Id, JsonSerializer.Serialize(new KeyInput(key), FalJson.Options), hint: null);

        var status = await handle.GetStatusAsync();
        Assert.Contains(status.Logs, l => l.Message == $"routed with hint '{key}' from the app's hint field");
        Assert.Empty((await router.GetSnapshotAsync()).Runners);
        await handle.CancelAsync();
    }
}

/// <summary>The hint an app's hint field gives a request without one, after its router restarts.</summary>
public sealed class DeclaredHintTests(FalHintsCluster<DeclaredHintProfile> cluster) : IClassFixture<FalHintsCluster<DeclaredHintProfile>>
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private static string Input(string key, string? hold = null) => JsonSerializer.Serialize(new KeyInput(key, hold), FalJson.Options);

    private static string NewKey(string prefix) => $"{prefix}-{Guid.NewGuid():N}";

    private IRouterGrain Router => cluster.Cluster.Client.GetGrain<IRouterGrain>(HintFieldApp.Id);

    [Fact]
    public async Task A_request_a_restarted_router_picks_up_keeps_the_declared_hint()
    {
        // Both runners busy, one with the key the queued request's hint field names.
        var (key, other) = (NewKey("held"), NewKey("other"));
        var (hold, otherHold) = (NewKey("hold"), NewKey("hold"));
        var holder = await cluster.Client.EnqueueAsync(HintFieldApp.Id, Input(key, hold), key);
        var busy = await cluster.Client.EnqueueAsync(HintFieldApp.Id, Input(other, otherHold), other);
        await Eventually.StatusAsync(holder, s => s.State == RequestState.InProgress, Patience, "running");
        await Eventually.StatusAsync(busy, s => s.State == RequestState.InProgress, Patience, "running");
        var queued = await cluster.Client.EnqueueAsync(HintFieldApp.Id, Input(key), hint: null);
        Assert.Equal(RequestState.Queued, (await queued.GetStatusAsync()).State);

        // The new activation learns of the queued request from its grain, which keeps it as the caller sent it.
        await cluster.Cluster.DeactivateAsync(Router);
        await Eventually.ValueAsync(Router.GetSnapshotAsync, s => s.Queued == 1 && s.InFlight == 2, Patience, "the router rebuilt");
        GatedLoadApp.Gate(hold).SetResult();

        Assert.Null((await queued.GetResultAsync().WaitAsync(Patience)).Error);
        var status = await queued.GetStatusAsync();
        Assert.True(status.HintHit);
        Assert.Equal((await holder.GetStatusAsync()).RunnerId, status.RunnerId);
        GatedLoadApp.Gate(otherHold).SetResult();
        await Task.WhenAll(holder.GetResultAsync().WaitAsync(Patience), busy.GetResultAsync().WaitAsync(Patience));
    }
}
