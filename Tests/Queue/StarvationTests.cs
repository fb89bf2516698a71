using FalHints.Benchmarks.Simulation;
using FalHints.Router.Placement;
using FalHints.Router.Queue;
using static FalHints.Tests.Support.Runners;

namespace FalHints.Tests.Queue;

/// <summary>
/// The starvation guarantee of FalHints' policies (once a request is the oldest of its class and
/// <see cref="DispatcherOptions.HeadBypassLimit"/> younger ones have started before it, it starts on the next free
/// runner holding its hint, or on the next free runner if none holds it) and the absence of congestion collapse it buys:
/// under sustained overload throughput and hits stay where they are at the edge of capacity.
/// </summary>
public sealed class StarvationTests
{
    public static TheoryData<string> Policies => [PlacementPolicies.HintAffinity, PlacementPolicies.WaitForHolder];

    [Theory]
    [MemberData(nameof(Policies))]
    public void Once_passed_over_the_limit_the_oldest_request_goes_first_on_its_hint_s_holders_or_anywhere_if_none_holds_it(string policy)
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
        var hintOf = new Dictionary<string, string>();
        var running = new List<Dispatch>();
        var loading = new List<PrewarmChoice>();
        var (worst, dueStarts) = (0, 0);
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
                hintOf[id] = hint;
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

            // What each runner holds before the round (and what it is sent in it), and the head before each start, from the
            // test's own record of who waits.
            var held = dispatcher.Index.All.ToDictionary(r => r.RunnerId, r => r.Hints.Concat(r.Loading).Concat(r.Sent).ToHashSet());
            var placed = dispatcher.Pump(now);
            dispatcher.Prewarms.ToList().ForEach(p => held[p.RunnerId].Add(p.Hint));
            loading.AddRange(dispatcher.Prewarms);
            foreach (var dispatch in placed)
            {
                var head = waiting.Min.Id;
                if (head != trackedHead)
                {
                    (trackedHead, bypasses) = (head, 0);
                }

                if (dispatch.Ticket.RequestId != head)
                {
                    if (bypasses >= Limit)
                    {
                        // Due: a request may still go first only on a runner not holding the head's hint, and only while some runner holds it.
                        dueStarts++;
                        var holders = held.Where(e => e.Value.Contains(hintOf[head])).Select(e => e.Key).ToList();
                        Assert.NotEmpty(holders);
                        Assert.DoesNotContain(dispatch.RunnerId, holders);
                    }

                    worst = Math.Max(worst, ++bypasses);
                }

                held[dispatch.RunnerId].Add(hintOf[dispatch.Ticket.RequestId]);
                waiting.Remove((dispatch.Ticket.AcceptedAt, dispatch.Ticket.RequestId));
                running.Add(dispatch);
            }
        }

        Assert.True(worst > Limit, $"the head was passed over at most {worst} times: the case never reached the limit");
        Assert.True(dueStarts > 0);
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
