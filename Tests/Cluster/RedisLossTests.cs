using System.Globalization;
using FalHints.Client.Contracts;
using FalHints.Client.Requests;
using FalHints.Host.Hosting;
using FalHints.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace FalHints.Tests.Cluster;

/// <summary>
/// Three real nodes on a real Redis under a steady workload, while Redis loses everything (FLUSHALL) or restarts (with
/// its append-only file). The test acts as the nodes' supervisor: a node that exits is started again under its name.
/// Every accepted request must complete or fail with a named error.
/// </summary>
public sealed class RedisLossTests(TinyModelStore models, ITestOutputHelper output) : IClassFixture<TinyModelStore>
{
    private static readonly TimeSpan Startup = TimeSpan.FromSeconds(120);
    private static readonly string[] Names = ["loss-a", "loss-b", "loss-c"];

    // Fast enough for a test; each is documented with its default.
    private static readonly Dictionary<string, string> Settings = new()
    {
        ["FalHints__Cluster__MembershipLossExitAfter"] = "00:00:05",
        ["FalHints__Router__ResumeInterval"] = "00:00:01",
    };

    [Fact]
    public async Task A_flushed_redis_brings_every_node_down_and_back_and_no_accepted_request_is_lost()
    {
        using var redis = await RedisServer.StartAsync();
        await using var cluster = await Supervised.StartAsync(redis, models.Root);
        using var client = await redis.ConnectClientAsync();
        using var load = new ClusterWorkload(new FalHintsClient(client.Services.GetRequiredService<IClusterClient>()), workers: 4, seed: 5);
        await load.WaitForCompletedAsync(20, Startup);

        var flushedAt = load.Elapsed;
        await redis.FlushAsync();
        var exits = await cluster.SuperviseUntilRestartedAsync(Names.Length, Startup);
        await load.WaitForServedByAsync(string.Empty, load.Elapsed, Startup);
        var recovery = load.Elapsed - flushedAt;

        Report("Redis flushed (FLUSHALL)", load, await load.StopAsync(TimeSpan.FromSeconds(150)), recovery);
        Assert.All(exits, code => Assert.Equal(NodeHealth.MembershipLostExitCode, code));
        Assert.Contains(cluster.Output, o => o.Contains("the cluster's membership table lost it", StringComparison.Ordinal));
        AssertNothingLost(load);
    }

    [Fact]
    public async Task A_redis_restart_with_persistence_keeps_every_node_and_every_accepted_request()
    {
        using var redis = await RedisServer.StartAsync();
        await using var cluster = await Supervised.StartAsync(redis, models.Root);
        using var client = await redis.ConnectClientAsync();
        using var load = new ClusterWorkload(new FalHintsClient(client.Services.GetRequiredService<IClusterClient>()), workers: 4, seed: 7);
        await load.WaitForCompletedAsync(20, Startup);

        var stoppedAt = load.Elapsed;
        await redis.StopAsync();
        await Task.Delay(TimeSpan.FromSeconds(3));
        await redis.RestartAsync();
        await load.WaitForServedByAsync(string.Empty, load.Elapsed, Startup);
        var recovery = load.Elapsed - stoppedAt;
        await Task.Delay(TimeSpan.FromSeconds(3));

        Report("Redis restarted (SIGTERM, 3 s down, append-only file)", load, await load.StopAsync(TimeSpan.FromSeconds(150)), recovery);
        Assert.Empty(await cluster.SuperviseUntilRestartedAsync(0, TimeSpan.Zero));
        AssertNothingLost(load);
    }

    private void Report(string what, ClusterWorkload load, int lost, TimeSpan recovery)
    {
        var outcomes = load.Outcomes;
        var accepted = outcomes.Where(o => o.Accepted).ToList();
        var failed = accepted.Where(o => o.Error is not null).ToList();
        output.WriteLine(what);
        output.WriteLine("| sent | accepted | completed | failed | refused at submission | lost | recovery (s) |");
        output.WriteLine("|---:|---:|---:|---:|---:|---:|---:|");
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| {outcomes.Count + lost} | {accepted.Count + lost} | {accepted.Count - failed.Count} | {failed.Count} | {outcomes.Count - accepted.Count} | {lost} | {recovery.TotalSeconds:0.0} |"));
        foreach (var failure in outcomes.Where(o => o.Error is not null).GroupBy(o => (o.Accepted, o.Error)))
        {
            output.WriteLine($"{(failure.Key.Accepted ? "failed" : "refused")}: {failure.Count()} x {failure.Key.Error}");
        }

        foreach (var (id, _) in load.Pending)
        {
            output.WriteLine($"never came back: {id}");
        }
    }

    private static void AssertNothingLost(ClusterWorkload load)
    {
        Assert.Empty(load.Pending);
        var named = typeof(ErrorCodes).GetFields().Select(f => (string)f.GetValue(null)!).ToHashSet(StringComparer.Ordinal);
        Assert.All(load.Outcomes.Where(o => o.Accepted && o.Error is not null), o => Assert.Contains(o.Error!, named));
    }

    /// <summary>The three nodes, each started again under its name and ports when it exits, as a service manager would.</summary>
    private sealed class Supervised : IAsyncDisposable
    {
        private readonly Dictionary<string, (string[] Arguments, HostProcess Process)> _nodes = [];
        private readonly List<HostProcess> _exited = [];

        public IEnumerable<string> Output => _exited.Concat(_nodes.Values.Select(n => n.Process)).Select(p => p.Output);

        public static async Task<Supervised> StartAsync(RedisServer redis, string modelsRoot)
        {
            var supervised = new Supervised();
            foreach (var name in Names)
            {
                string[] arguments = ["serve", "--cluster", "redis", "--redis", redis.ConnectionString, "--silo-name", name, "--advertise", "127.0.0.1",
                    "--silo-port", Port(), "--gateway-port", Port(), "--http-port", Port(), "--runners", "1", "--models", modelsRoot];
                supervised._nodes[name] = (arguments, HostProcess.Start(Settings, arguments));
            }

            await Task.WhenAll(supervised._nodes.Values.Select(n => n.Process.WaitForOutputAsync("FalHints is serving", Startup)));
            return supervised;
        }

        /// <summary>
        /// Restarts nodes as they exit until <paramref name="restarts"/> have been restarted and serve again (or, for
        /// zero, checks that none exited); returns the exit codes seen.
        /// </summary>
        public async Task<List<int>> SuperviseUntilRestartedAsync(int restarts, TimeSpan timeout)
        {
            var codes = new List<int>();
            using var deadline = new CancellationTokenSource(timeout);
            var serving = new List<Task>();
            while (codes.Count < restarts && !deadline.IsCancellationRequested)
            {
                foreach (var name in Names.Where(n => _nodes[n].Process.HasExited).ToList())
                {
                    var (arguments, exited) = _nodes[name];
                    codes.Add(exited.ExitCode);
                    _exited.Add(exited);
                    var restarted = HostProcess.Start(Settings, arguments);
                    _nodes[name] = (arguments, restarted);
                    serving.Add(restarted.WaitForOutputAsync("FalHints is serving", Startup));
                }

                await Task.Delay(TimeSpan.FromMilliseconds(200), CancellationToken.None);
            }

            codes.AddRange(Names.Where(n => _nodes[n].Process.HasExited).Select(n => _nodes[n].Process.ExitCode));
            await Task.WhenAll(serving);
            return codes;
        }

        public ValueTask DisposeAsync()
        {
            foreach (var process in _exited.Concat(_nodes.Values.Select(n => n.Process)))
            {
                process.Dispose();
            }

            return ValueTask.CompletedTask;
        }

        private static string Port() => HostProcess.FreeTcpPort().ToString(CultureInfo.InvariantCulture);
    }
}
