using FalHints.Client.Contracts;
using FalHints.Tests.Support;

namespace FalHints.Tests.Runners;

public sealed class TwoSiloProfile : IClusterProfile
{
    public short Silos => 2;
}

public sealed class RunnerPinningTests : IClassFixture<FalHintsCluster<TwoSiloProfile>>
{
    private readonly FalHintsCluster<TwoSiloProfile> _cluster;

    public RunnerPinningTests(FalHintsCluster<TwoSiloProfile> cluster) => _cluster = cluster;

    [Fact]
    public async Task Runner_of_a_killed_silo_fails_fast_instead_of_reactivating_elsewhere()
    {
        var doomed = _cluster.Cluster.Silos[1];
        var survivor = _cluster.Cluster.Silos[0];
        var runner = _cluster.Cluster.Client.GetGrain<IRunnerGrain>($"{doomed.Name}/cpu:0");
        Assert.Equal(doomed.Name, (await runner.GetStatusAsync()).HostSilo);

        await _cluster.Cluster.KillSiloAsync(doomed);
        await _cluster.Cluster.WaitForLivenessToStabilizeAsync(didKill: true);

        var error = await Assert.ThrowsAnyAsync<Exception>(() => runner.GetStatusAsync().WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.IsNotType<TimeoutException>(error);
        Assert.Contains(doomed.Name, error.ToString(), StringComparison.Ordinal);
        var alive = await _cluster.Cluster.Client.GetGrain<IRunnerGrain>($"{survivor.Name}/cpu:0").GetStatusAsync();
        Assert.Equal(survivor.Name, alive.HostSilo);
    }
}
