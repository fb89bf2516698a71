using FalHints.Benchmarks.Simulation;
using FalHints.Router.Placement;
using FalHints.Router.Queue;
using static FalHints.Tests.Support.Runners;

namespace FalHints.Tests.Queue;

/// <summary>
/// The starvation guarantee of FalHints' policies (once a request is the oldest of its class, at most
/// <see cref="DispatcherOptions.HeadBypassLimit"/> younger ones start before it) and the absence of congestion collapse
/// it buys: under sustained overload throughput and hits stay where they are at the edge of capacity.
/// </summary>
public sealed class StarvationTests
{
    public static TheoryData<string> Policies => [PlacementPolicies.HintAffinity, PlacementPolicies.WaitForHolder];

    [Theory]
    [MemberData(nameof(Policies))]
    public void No_request_is_passed_over_more_than_the_limit_while_it_is_the_oldest(string policy)
    {
        const int Limit = 5;
        var dispatcher = new Dispatcher(PlacementPolicies.Create(policy, new SeededRandom(1)), new DispatcherOptions(Limit, int.MaxValue, 10));
        for (var r = 0; r < 3; r++)
        {
            dispatcher.Index.With($"s/cpu:{r}", hints: [$"hot-{r}"]);
        }

        // Overload: mostly hot models the runners hold, a few cold ones nobody holds, arriving faster than they are served.
        var random = new Random(7);
        var waiting = new SortedSet<(DateTimeOffset At, string Id)>();
        var running = new List<Dispatch>();
        var loading = new List<PrewarmChoice>();
        var worst = 0;
        string? trackedHead = null;
        var bypasses = 0;
        for (var step = 0; step < 3_000; step++)
        {
            var now = T0.AddMilliseconds(step * 10);
            for (var k = 0; k < 2; k++)
            {
                var id = $"r{step}-{k}";
                var hint = random.NextDouble() < 0.05 ? $"cold-{random.Next(20)}" : $"hot-{random.Next(3)}";
                dispatcher.Enqueue(Ticket(hint, id, at: now));
                waiting.Add((now, id));
            }

            if (running.Count > 0 && random.NextDouble() < 0.6)
            {
                var done = running[random.Next(running.Count)];
                running.Remove(done);
                dispatcher.Complete(done.Ticket.RequestId, done.RunnerId);
            }

            // Background copies the policy asked for take a while too.
            if (loading.Count > 0 && random.NextDouble() < 0.3)
            {
                var loaded = loading[0];
                loading.RemoveAt(0);
                dispatcher.PrewarmDone(loaded);
            }

            // The head before each start, from the test's own record of who waits.
            foreach (var dispatch in dispatcher.Pump(now))
            {
                var head = waiting.Min.Id;
                if (head != trackedHead)
                {
                    (trackedHead, bypasses) = (head, 0);
                }

                if (dispatch.Ticket.RequestId != head)
                {
                    worst = Math.Max(worst, ++bypasses);
                }

                waiting.Remove((dispatch.Ticket.AcceptedAt, dispatch.Ticket.RequestId));
                running.Add(dispatch);
            }

            loading.AddRange(dispatcher.Prewarms);
        }

        Assert.InRange(worst, 1, Limit);
    }

    [Theory]
    [MemberData(nameof(Policies))]
    public void Sustained_overload_keeps_the_throughput_and_hits_of_the_edge_of_capacity(string policy)
    {
        // Large models (loads of seconds), a flash crowd, 4 runners: at 95% of inference capacity and at 130%.
        var edge = Simulator.Run(Small(0.95), PlacementPolicies.Create(policy, new SeededRandom(1)));
        var overload = Simulator.Run(Small(1.3), PlacementPolicies.Create(policy, new SeededRandom(1)));

        // Stated margin: within 10% of the edge's throughput and 5 points of its hit rate.
        Assert.True(overload.ThroughputRps >= 0.9 * edge.ThroughputRps, $"throughput {overload.ThroughputRps:0.0} req/s overloaded against {edge.ThroughputRps:0.0} at the edge");
        Assert.True(overload.HitRate >= edge.HitRate - 0.05, $"hits {overload.HitRate:P1} overloaded against {edge.HitRate:P1} at the edge");
    }

    private static Workload Small(double utilisation) =>
        Workloads.BuiltIn("flash-crowd", seed: 3, requests: 3_000, runners: 4, models: 12, runnerMemory: 48L << 30, utilisation: utilisation);
}
