using FalHints.Benchmarks.Simulation;
using FalHints.Router.Placement;
using FalHints.Tests.Support;

namespace FalHints.Tests.Simulation;

public sealed class SimulatorTests
{
    private static Workload Tiny(params string[] sequence) => new(
        "tiny", Runners: 1, RunnerMemoryBytes: 2,
        ModelBytes: sequence.Distinct().ToDictionary(m => m, _ => 1L),
        LoadFixedMs: 100, LoadGbps: 1,
        Requests: [.. sequence.Select((m, i) => new SimRequest(i * 1000.0, m, true, 10))]);

    /// <summary>One runner with room for one of two 1 GB models, loaded at 1 GB/s after <paramref name="loadFixedMs"/>.</summary>
    private static Workload OneRunnerTwoModels(double loadFixedMs, params SimRequest[] requests) => new(
        "two-models", Runners: 1, RunnerMemoryBytes: 1_000_000_000,
        ModelBytes: new Dictionary<string, long> { ["a"] = 1_000_000_000, ["b"] = 1_000_000_000 },
        LoadFixedMs: loadFixedMs, LoadGbps: 1, Requests: requests);

    [Fact]
    public void Belady_evicts_the_model_used_farthest_in_the_future()
    {
        // Room for two models. c is never used again, so it is the one not kept: a and b both hit.
        Assert.Equal(0.4, Bounds.BeladyHitRate(Tiny("a", "b", "c", "a", "b")), precision: 6);

        // Here c is used again before b: b is evicted, then a and c hit and b misses.
        Assert.Equal(2.0 / 6, Bounds.BeladyHitRate(Tiny("a", "b", "c", "a", "c", "b")), precision: 6);
    }

    [Fact]
    public void Utilisation_sets_the_arrival_rate_of_a_built_in_workload()
    {
        var busy = Workloads.BuiltIn("zipf", seed: 5, requests: 4_000, runners: 4, models: 12, runnerMemory: 4L << 30, utilisation: 0.6);
        var light = Workloads.BuiltIn("zipf", seed: 5, requests: 4_000, runners: 4, models: 12, runnerMemory: 4L << 30, utilisation: 0.15);

        // Same draws, a quarter of the rate: every arrival comes four times later.
        Assert.Equal(4.0, light.Requests[^1].ArrivalMs / busy.Requests[^1].ArrivalMs, precision: 6);
        Assert.Equal(busy.Requests.Select(r => r.Model), light.Requests.Select(r => r.Model));
    }

    [Fact]
    public void Every_request_completes_and_loads_plus_hits_add_up()
    {
        var workload = Workloads.BuiltIn("zipf", seed: 5, requests: 2_000, runners: 4, models: 12, runnerMemory: 4L << 30);

        var result = Simulator.Run(workload, new HintAffinityPolicy());

        Assert.Equal(2_000, result.Completed);
        Assert.Equal(result.Loads, (long)Math.Round((1 - result.HitRate) * 2_000) + result.Prewarms);
        Assert.True(result.P50Ms >= Bounds.LatencyFloor(workload).P50Ms);
        Assert.True(result.HitRate <= Bounds.BeladyHitRate(workload) + 1e-9);
    }

    [Fact]
    public void Runner_time_splits_the_run_into_inference_loads_and_idle_time()
    {
        // One runner with room for one model: a at 0 (load 100 ms + 1 ns, 10 ms inference), b at 500 ms (the same).
        var workload = Tiny("a", "b") with { RunnerMemoryBytes = 1, Requests = [new SimRequest(0, "a", true, 10), new SimRequest(500, "b", true, 10)] };

        var time = Simulator.Run(workload, new HintAffinityPolicy()).Time;

        Assert.Equal(20, time.ServingMs, precision: 3);
        Assert.Equal(200, time.LoadingMs, precision: 3);
        Assert.Equal((0.0, 0.0), (time.PromotingMs, time.IdleWaitingMs));
        Assert.Equal(390, time.IdleEmptyMs, precision: 3);

        // Two runners: both requests for a wait for its one holder (a load of 1 s against a backlog of one request), so
        // the other runner stands idle for the whole load and the first request while the second waits at the router.
        var waiting = Tiny("a") with { Runners = 2, RunnerMemoryBytes = 1, LoadFixedMs = 1000, Requests = [new SimRequest(0, "a", true, 10), new SimRequest(0, "a", true, 10)] };
        var waited = Simulator.Run(waiting, new WaitForHolderPolicy());
        Assert.Equal(1, waited.Loads);
        Assert.Equal(1000.000001 + 10, waited.Time.IdleWaitingMs, precision: 3);
        Assert.Equal(2 * (1000.000001 + 20), waited.Time.TotalMs, precision: 3);

        // On a whole workload, two requests at a time per runner, the parts add up to the slots times the span of the run.
        var zipf = Workloads.BuiltIn("zipf", seed: 5, requests: 2_000, runners: 4, models: 12, runnerMemory: 4L << 30, utilisation: 0.9) with { MaxMultiplexing = 2 };
        var result = Simulator.Run(zipf, new WaitForHolderPolicy());
        Assert.Equal(4 * 2 * result.Completed / result.ThroughputRps * 1000, result.Time.TotalMs, precision: 3);
        Assert.True(result.Time.LoadingMs > 0 && result.Time.ServingMs > 0);
    }

    [Fact]
    public void A_prewarm_keeps_the_simulated_runner_busy_for_its_load_and_counts_as_a_load()
    {
        // One runner; the request arrives at 1 s, and the policy first has "a" loaded (100 ms + 1 byte) in the background.
        var workload = Tiny("a") with { RunnerMemoryBytes = 1, Requests = [new SimRequest(1000, "a", true, 10)] };

        var result = Simulator.Run(workload, new PrewarmOnce("a", holdBack: true));

        Assert.Equal((1.0, 1L, 1L), (result.HitRate, result.Loads, result.Prewarms));
        Assert.Equal(110, result.P50Ms, precision: 3);
    }

    [Fact]
    public void Throughput_counts_to_the_last_response_not_to_a_background_load_that_ends_after_it()
    {
        // Two runners. The request for a (load 100 ms + 1 ns, 10 ms inference) ends at 110 ms; the policy meanwhile has b
        // (10 GB at 1 GB/s: 10.1 s) loaded in the background on the other runner, which ends long after.
        var workload = Tiny("a") with
        {
            Runners = 2,
            RunnerMemoryBytes = 20_000_000_000,
            ModelBytes = new Dictionary<string, long> { ["a"] = 1, ["b"] = 10_000_000_000 },
        };

        var result = Simulator.Run(workload, new PrewarmOnce("b", runner: "sim-0/cpu:1"));

        Assert.Equal((1L, 2L), (result.Prewarms, result.Loads));
        Assert.Equal(1 / 0.110, result.ThroughputRps, precision: 3);
        // The runners' time still runs to the end of the background load: both slots for 10.1 s.
        Assert.Equal(2 * 10_100, result.Time.TotalMs, precision: 3);
        Assert.Equal(10_100 + 100, result.Time.LoadingMs, precision: 3);
    }

    [Fact]
    public void The_never_wait_ceiling_loads_its_layout_and_evicts_as_the_runners_do()
    {
        // One runner with room for one model. The best layout holds a, but it must be loaded before the first request
        // (which waits for it and hits), and b's miss evicts a, so the last a misses too: two hits of four.
        var workload = Tiny("a", "a", "b", "a") with { RunnerMemoryBytes = 1 };

        Assert.Equal(0.5, Bounds.NeverWaitCeiling(workload), precision: 6);
        Assert.True(Bounds.NeverWaitCeiling(workload) <= Bounds.BeladyHitRate(workload) + 1e-9);
    }

    [Fact]
    public void With_a_host_tier_an_evicted_model_comes_back_as_a_promotion_cheaper_than_a_load()
    {
        // One runner with room for one 1 GB model: b evicts a, and the second a finds it in host memory.
        var workload = OneRunnerTwoModels(loadFixedMs: 100, new SimRequest(0, "a", true, 10), new SimRequest(5_000, "b", true, 10), new SimRequest(10_000, "a", true, 10));

        var flat = Simulator.Run(workload, new HintAffinityPolicy());
        var tiered = Simulator.Run(workload with { HostMemoryBytes = 2_000_000_000, HostGbps = 20 }, new HintAffinityPolicy());

        Assert.Equal((3L, 0L), (flat.Loads, flat.Promotions));
        Assert.Equal((2L, 1L), (tiered.Loads, tiered.Promotions));
        Assert.Equal(0, tiered.HitRate);
        // A load costs 100 ms + 1 GB at 1 GB/s; a promotion 1 GB at 20 GB/s: 50 ms, then 10 ms of inference.
        Assert.Equal([60.0, 1110.0, 1110.0], tiered.LatenciesMs);
        Assert.Equal([1110.0, 1110.0, 1110.0], flat.LatenciesMs);
        Assert.Equal(50, tiered.Time.PromotingMs, precision: 3);
        Assert.Equal(2 * 1100, tiered.Time.LoadingMs, precision: 3);
    }

    [Fact]
    public void With_a_host_tier_the_capacity_bound_charges_a_reload_as_a_promotion()
    {
        // Room for one model, a and b alternate: Belady keeps a and misses a, b and the last b. Without a tier that is
        // three loads of 1 s; with one, only the first use of each is a load and b's reload is a promotion (1 GB at
        // 10 GB/s: 100 ms). Inference adds 4 x 100 ms.
        var workload = OneRunnerTwoModels(loadFixedMs: 0, [.. new[] { "a", "b", "a", "b" }.Select(m => new SimRequest(0, m, true, 100))]);
        var tiered = workload with { HostMemoryBytes = 1_000_000_000, HostGbps = 10 };

        Assert.Equal(4 / 3.4, Bounds.CapacityBoundRps(workload), precision: 6);
        Assert.Equal(4 / 2.5, Bounds.CapacityBoundRps(tiered), precision: 6);
        Assert.Equal(Bounds.BeladyHitRate(workload), Bounds.BeladyHitRate(tiered));
    }

    [Fact]
    public void With_a_host_tier_policies_promote_and_stay_within_the_bounds()
    {
        var workload = Workloads.BuiltIn("zipf-drift", seed: 3, requests: 2_000, runners: 4, models: 12, runnerMemory: 4L << 30, utilisation: 0.3)
            with { HostMemoryBytes = 8L << 30, HostGbps = 20 };

        var belady = Bounds.BeladyHitRate(workload);
        Assert.True(Bounds.NeverWaitCeiling(workload) <= belady + 1e-9);
        foreach (var policy in new IPlacementPolicy[] { new HintAffinityPolicy(), new WaitForHolderPolicy() })
        {
            var run = Simulator.Run(workload, policy);
            Assert.True(run.Promotions > 0, $"{policy.Name}: no promotions");
            Assert.True(run.HitRate <= belady + 1e-9, $"{policy.Name}: {run.HitRate:P2} against Belady's {belady:P2}");
            Assert.True(run.ThroughputRps <= Bounds.CapacityBoundRps(workload) + 1e-9, $"{policy.Name}: {run.ThroughputRps:0.0} req/s");
        }
    }

    [Fact]
    public void Hint_affinity_beats_round_robin_on_hits_and_tail_latency()
    {
        var workload = Workloads.BuiltIn("zipf", seed: 5, requests: 2_000, runners: 4, models: 12, runnerMemory: 4L << 30);

        var hinted = Simulator.Run(workload, new HintAffinityPolicy());
        var roundRobin = Simulator.Run(workload, new RoundRobinPolicy());

        Assert.True(hinted.HitRate > roundRobin.HitRate, $"{hinted.HitRate:P1} against {roundRobin.HitRate:P1}");
        Assert.True(hinted.P99Ms < roundRobin.P99Ms, $"{hinted.P99Ms:0} ms against {roundRobin.P99Ms:0} ms");
    }

    [Fact]
    public void A_trace_with_a_model_column_keeps_unhinted_requests_unhinted()
    {
        var folder = Directory.CreateTempSubdirectory("falhints-trace-");
        try
        {
            var workload = Workloads.BuiltIn("partial-hints", seed: 2, requests: 200, runners: 2, models: 5);
            var trace = Path.Combine(folder.FullName, "trace.csv");
            var models = Path.Combine(folder.FullName, "models.csv");
            Workloads.WriteTrace(workload, trace, models);

            var read = Workloads.FromTrace(trace, models, 2, 8L << 30, 200, 2);

            Assert.Equal(workload.Requests.Select(r => (r.Model, r.Hinted)), read.Requests.Select(r => (r.Model, r.Hinted)));
            Assert.Contains(read.Requests, r => !r.Hinted);
            File.WriteAllText(trace, "arrival_ms,hint,service_ms,model\n0,other,10,org/model-000\n");
            Assert.Contains("does not name the request's model", Assert.Throws<FormatException>(() => Workloads.FromTrace(trace, models, 2, 8L << 30, 200, 2)).Message, StringComparison.Ordinal);
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    [Fact]
    public void The_capacity_bound_counts_inference_and_the_loads_belady_cannot_avoid()
    {
        // One runner, two models used alternately, room for both: two loads of 100 + 1 ms each, four inferences of 10 ms.
        var workload = Tiny("a", "b", "a", "b") with { RunnerMemoryBytes = 2, Requests = [.. Tiny("a", "b", "a", "b").Requests.Select(r => r with { ArrivalMs = 0 })] };

        Assert.Equal(4 / ((2 * 100.000001 + 40) / 1000), Bounds.CapacityBoundRps(workload), precision: 3);
        Assert.False(Bounds.Servable(workload));
    }

    [Fact]
    public void A_trace_naming_a_model_the_models_file_lacks_is_refused_with_the_line()
    {
        var folder = Directory.CreateTempSubdirectory("falhints-trace-");
        try
        {
            var trace = Path.Combine(folder.FullName, "trace.csv");
            var models = Path.Combine(folder.FullName, "models.csv");
            File.WriteAllText(trace, "arrival_ms,hint,service_ms\n0,a,10\n5,b,10\n");
            File.WriteAllText(models, "hint,bytes\na,100\n");

            var error = Assert.Throws<FormatException>(() => Workloads.FromTrace(trace, models, 2, 1000, 10, 1));

            Assert.Contains("trace.csv:3: the request needs model 'b'", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }
}
