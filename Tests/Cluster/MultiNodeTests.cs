using System.Diagnostics;
using System.Globalization;
using FalHints.Client.Apps;
using FalHints.Client.Contracts;
using FalHints.Client.Requests;
using FalHints.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace FalHints.Tests.Cluster;

/// <summary>
/// Three real silo processes on a real redis-server, under a steady hinted workload: one is killed with SIGKILL,
/// restarted under its name, and another is stopped with SIGTERM. Nothing accepted may be lost.
/// </summary>
public sealed class MultiNodeTests(TinyModelStore models, ITestOutputHelper output) : IClassFixture<TinyModelStore>
{
    private static readonly TimeSpan Startup = TimeSpan.FromSeconds(120);
    private static readonly TimeSpan Detection = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task Three_silos_on_redis_lose_no_request_through_a_crash_a_restart_and_a_drain()
    {
        using var redis = await RedisServer.StartAsync();
        var nodes = new[] { "node-a", "node-b", "node-c" }.ToDictionary(n => n, _ => (Silo: HostProcess.FreeTcpPort(), Gateway: HostProcess.FreeTcpPort()));
        var running = new Dictionary<string, HostProcess>();
        var stopped = new List<HostProcess>();
        try
        {
            foreach (var name in nodes.Keys)
            {
                running[name] = StartNode(name, nodes[name], redis);
            }

            await Task.WhenAll(running.Values.Select(n => n.WaitForOutputAsync("FalHints is serving", Startup)));
            using var client = await redis.ConnectClientAsync();
            var falClient = new FalHintsClient(client.Services.GetRequiredService<IClusterClient>());
            var router = client.Services.GetRequiredService<IClusterClient>().GetGrain<IRouterGrain>(AnyModel.AppId);
            using var load = new ClusterWorkload(falClient, workers: 6, seed: 3);
            var clock = Stopwatch.StartNew();

            await load.WaitForCompletedAsync(30, Startup);
            await Task.Delay(TimeSpan.FromSeconds(5));

            var killedAt = clock.Elapsed;
            running["node-b"].Kill();
            await Eventually.ValueAsync(() => SnapshotOrNullAsync(router), s => s is not null && !s.Runners.Any(r => r.RunnerId.StartsWith("node-b/", StringComparison.Ordinal)), Detection, "node-b's runners dropped");
            var detection = clock.Elapsed - killedAt;
            await Task.Delay(TimeSpan.FromSeconds(5));

            var restartedAt = clock.Elapsed;
            stopped.Add(running["node-b"]);
            running["node-b"] = StartNode("node-b", nodes["node-b"], redis);
            await running["node-b"].WaitForOutputAsync("FalHints is serving", Startup);
            await load.WaitForServedByAsync("node-b/", restartedAt, Startup);
            var recovery = clock.Elapsed - restartedAt;
            await Task.Delay(TimeSpan.FromSeconds(5));

            var terminatedAt = clock.Elapsed;
            running["node-c"].Terminate();
            await running["node-c"].WaitForExitAsync(Startup);
            var drain = clock.Elapsed - terminatedAt;
            Assert.True(running["node-c"].ExitCode == 0, running["node-c"].Output);
            await Task.Delay(TimeSpan.FromSeconds(5));

            var lost = await load.StopAsync(TimeSpan.FromSeconds(150));
            var outcomes = load.Outcomes;
            var failed = outcomes.Where(o => o.Error is not null).ToList();
            var before = outcomes.Where(o => o.Sent < killedAt).ToList();
            var after = outcomes.Where(o => o.Sent > restartedAt + recovery).ToList();
            output.WriteLine($"| requests sent | completed | failed | lost | detection (s) | recovery (s) | drain (s) | hit rate before | hit rate after |");
            output.WriteLine($"|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {outcomes.Count + lost} | {outcomes.Count - failed.Count} | {failed.Count} | {lost} | {detection.TotalSeconds:0.0} | {recovery.TotalSeconds:0.0} | {drain.TotalSeconds:0.0} | {HitRate(before):P1} | {HitRate(after):P1} |"));
            foreach (var failure in failed.GroupBy(f => f.Error))
            {
                output.WriteLine($"failed: {failure.Count()} x {failure.Key}");
            }

            // A request that never came back: say where it stands, and what the silos logged about it, so a rare loss
            // can be traced.
            var pending = load.Pending;
            if (lost > 0 || Environment.GetEnvironmentVariable("FALHINTS_KEEP_LOGS") is not null)
            {
                var logs = Directory.CreateTempSubdirectory("falhints-multinode-");
                foreach (var (name, node) in stopped.Select((n, i) => ($"killed-{i}", n)).Concat(running.Select(r => (r.Key, r.Value))))
                {
                    await File.WriteAllTextAsync(Path.Combine(logs.FullName, $"{name}.log"), node.Output);
                }

                output.WriteLine($"silo logs: {logs.FullName}");
            }

            if (lost > pending.Count)
            {
                output.WriteLine($"{lost - pending.Count} submissions never returned from EnqueueAsync");
            }

            foreach (var (id, handle) in pending)
            {
                var status = await handle.GetStatusAsync().WaitAsync(TimeSpan.FromSeconds(10));
                output.WriteLine($"pending {id}: {status.State} on {status.RunnerId ?? "no runner"}, attempt {status.Attempts}; "
                    + string.Join(" | ", status.Logs.Select(l => $"{l.Timestamp:HH:mm:ss.fff} {l.Message}")));
                foreach (var line in stopped.Concat(running.Values).SelectMany(n => n.Output.Split('\n')).Where(l => l.Contains(id, StringComparison.Ordinal)))
                {
                    output.WriteLine($"  silo log: {line.TrimEnd()}");
                }
            }

            Assert.Equal(0, lost);

            // Runners of the nodes that stayed up kept their activation, and so their loaded models, through the other
            // nodes' crash, restart and drain.
            foreach (var (name, node) in new[] { ("node-a", running["node-a"]), ("node-b", running["node-b"]) })
            {
                foreach (var device in new[] { "cpu:0", "cpu:1" })
                {
                    var activations = node.Output.Split('\n').Count(l => l.Contains($"Runner {name}/{device} activated", StringComparison.Ordinal));
                    Assert.True(activations == 1, $"{name}/{device} was activated {activations} times:\n{node.Output}");
                }
            }

            Assert.DoesNotContain(failed, f => f.Done > terminatedAt);
            Assert.Contains(outcomes, o => o.Sent > restartedAt && o.RunnerId?.StartsWith("node-b/", StringComparison.Ordinal) == true);
            Assert.DoesNotContain(outcomes, o => o.Sent > terminatedAt + drain && o.RunnerId?.StartsWith("node-c/", StringComparison.Ordinal) == true);
        }
        finally
        {
            foreach (var node in running.Values.Concat(stopped))
            {
                node.Dispose();
            }
        }
    }

    private static double HitRate(List<ClusterWorkload.Outcome> outcomes) =>
        outcomes.Count == 0 ? 0 : outcomes.Count(o => o.HintHit) / (double)outcomes.Count;

    private HostProcess StartNode(string name, (int Silo, int Gateway) ports, RedisServer redis) =>
        HostProcess.Start("serve", "--cluster", "redis", "--redis", redis.ConnectionString, "--silo-name", name,
            "--silo-port", ports.Silo.ToString(CultureInfo.InvariantCulture), "--gateway-port", ports.Gateway.ToString(CultureInfo.InvariantCulture),
            "--advertise", "127.0.0.1", "--runners", "2", "--models", models.Root, "--http-port", HostProcess.FreeTcpPort().ToString(CultureInfo.InvariantCulture));

    private static async Task<RouterSnapshot?> SnapshotOrNullAsync(IRouterGrain router)
    {
        try
        {
            return await router.GetSnapshotAsync().WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (Exception ex) when (ex is OrleansException or TimeoutException)
        {
            return null;
        }
    }
}
