using System.Text.Json;
using FalHints.Client.Contracts;
using FalHints.Client.Requests;
using FalHints.Runner.Hosting;
using FalHints.Tests.Runners;
using FalHints.Tests.Support;

namespace FalHints.Tests.Routing;

/// <summary>Three silos with four runners each; runners silent for 5 s are dropped.</summary>
public sealed class FailoverProfile : IClusterProfile
{
    public short Silos => 3;

    public IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["FalHints:Runners:CpuRunners"] = "4",
        ["FalHints:Router:RunnerTimeout"] = "00:00:05",
        ["FalHints:Router:SweepInterval"] = "00:00:00.200",
        ["FalHints:Router:ResumeInterval"] = "00:00:00.500",
    };

    public void ConfigureSilo(ISiloBuilder silo) => silo.AddFalApp<GatedLoadApp>();
}

public sealed class FailoverTests : IClassFixture<FalHintsCluster<FailoverProfile>>
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);
    private readonly FalHintsCluster<FailoverProfile> _cluster;

    public FailoverTests(FalHintsCluster<FailoverProfile> cluster) => _cluster = cluster;

    [Fact]
    public async Task Requests_on_a_killed_silo_are_retried_elsewhere_unless_the_caller_opted_out()
    {
        var client = _cluster.Cluster.Client;
        var management = client.GetGrain<IManagementGrain>(0);
        var router = client.GetGrain<IRouterGrain>(GatedLoadApp.Id);
        await Eventually.ValueAsync(router.GetSnapshotAsync, s => s.Runners.Length == 12, Patience, "all twelve runners known");

        // Kill a silo that hosts neither the router nor the two request grains: their state is in memory storage here.
        var routerSilo = await management.GetActivationAddress(router);
        var doomed = _cluster.Cluster.Silos.First(s => !s.SiloAddress.Equals(routerSilo));

        GatedLoadApp.Gate("failover-model").TrySetResult();
        var devices = Enumerable.Range(0, 4).Select(i => $"cpu:{i}").ToList();
        foreach (var device in devices)
        {
            Assert.Null((await client.GetGrain<IRunnerGrain>($"{doomed.Name}/{device}").PrewarmAsync(GatedLoadApp.Id, "failover-model")).Error);
        }

        await Eventually.ValueAsync(router.GetSnapshotAsync,
            s => s.Runners.Count(r => r.RunnerId.StartsWith(doomed.Name + "/", StringComparison.Ordinal) && r.Hints.Contains("failover-model")) == 4,
            Patience, "the doomed silo's runners holding the model");

        var retried = await RunAwayFromAsync(management, doomed, SubmitOptions.Default);
        var fragile = await RunAwayFromAsync(management, doomed, new SubmitOptions(NoRetry: true));

        // The other silos' runners hold a model of their own, which they must keep through the death of a silo.
        GatedLoadApp.Gate("survivor-model").TrySetResult();
        var survivors = _cluster.Cluster.Silos.Where(s => s != doomed).SelectMany(s => devices.Select(d => client.GetGrain<IRunnerGrain>($"{s.Name}/{d}"))).ToList();
        foreach (var survivor in survivors)
        {
            Assert.Null((await survivor.PrewarmAsync(GatedLoadApp.Id, "survivor-model")).Error);
        }

        await _cluster.Cluster.KillSiloAsync(doomed);
        var snapshot = await Eventually.ValueAsync(router.GetSnapshotAsync,
            s => s.Runners.All(r => !r.RunnerId.StartsWith(doomed.Name + "/", StringComparison.Ordinal)), Patience, "the dead runners dropped");
        GatedLoadApp.Gate("failover-hold").TrySetResult();

        var handle = _cluster.Client.GetRequest(retried.Id);
        var result = await handle.GetResultAsync().WaitAsync(Patience);
        Assert.Null(result.Error);
        Assert.DoesNotContain(doomed.Name, result.RunnerId, StringComparison.Ordinal);
        var status = await handle.GetStatusAsync();
        Assert.Equal(2, status.Attempts);
        Assert.Contains(status.Logs, l => l.Message.Contains("retrying", StringComparison.Ordinal));
        Assert.Equal(8, snapshot.Runners.Length);
        foreach (var survivor in survivors)
        {
            var held = (await survivor.GetStatusAsync()).Apps.Single(a => a.AppId == GatedLoadApp.Id).Hints;
            Assert.True(held.Contains("survivor-model"), $"{survivor.GetPrimaryKeyString()} lost its model when another silo died: [{string.Join(", ", held)}]");
        }

        var failed = await _cluster.Client.GetRequest(fragile.Id).GetResultAsync().WaitAsync(Patience);
        Assert.Equal(ErrorCodes.RunnerFailed, failed.Error!.Code);
        Assert.Contains("opted out of retries", failed.Error.Message, StringComparison.Ordinal);
        Assert.True((await router.GetSnapshotAsync()).Retries >= 1);
    }

    /// <summary>
    /// A request running on one of <paramref name="silo"/>'s runners (they alone hold its hint) whose grain lives on
    /// another silo. A request grain is placed when first called, so one that lands on that silo is cancelled (which
    /// frees its runner) and another id is tried.
    /// </summary>
    private async Task<(string Id, IRequestGrain Grain)> RunAwayFromAsync(IManagementGrain management, Orleans.TestingHost.SiloHandle silo, SubmitOptions options)
    {
        var input = JsonSerializer.Serialize(new KeyInput("failover-model", "failover-hold"), FalJson.Options);
        while (true)
        {
            var id = RequestIds.New();
            var grain = _cluster.Cluster.Client.GetGrain<IRequestGrain>(id);
            await grain.SubmitAsync(new InferenceRequest(id, GatedLoadApp.Id, input, "failover-model", "/", options));
            var running = await Eventually.ValueAsync(grain.GetStatusAsync, s => s.State == RequestState.InProgress, Patience, "running");
            Assert.StartsWith(silo.Name + "/", running.RunnerId, StringComparison.Ordinal);
            if (!(await management.GetActivationAddress(grain))!.Equals(silo.SiloAddress))
            {
                return (id, grain);
            }

            await grain.CancelAsync();
            await Eventually.ValueAsync(grain.GetStatusAsync, s => s.State == RequestState.Completed, Patience, "cancelled");
        }
    }
}
