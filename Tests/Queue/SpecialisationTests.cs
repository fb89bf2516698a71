using FalHints.Client.Contracts;
using FalHints.Router.Placement;
using FalHints.Router.Queue;
using static FalHints.Tests.Support.Runners;

namespace FalHints.Tests.Queue;

/// <summary>
/// Repeat requests for the same hint specialise runners over time: the same skewed workload, run through the
/// dispatcher against runners whose caches hold two models each, hits the cache far more often with hint affinity
/// than with round-robin.
/// </summary>
public sealed class SpecialisationTests
{
    private const int RunnerCount = 4;
    private const int CacheSlots = 2;
    private const int Requests = 2_000;

    [Fact]
    public void Hinted_routing_specialises_runners_and_beats_round_robin_on_cache_hits()
    {
        var workload = Workload(seed: 7, models: 8);

        var hinted = CacheHitRate(new HintAffinityPolicy(), workload);
        var roundRobin = CacheHitRate(new RoundRobinPolicy(), workload);

        // Measured: 76.0% against 38.4% for this seeded workload.
        Assert.True(hinted > roundRobin + 0.25, $"hit rate with hints {hinted:P1}, round-robin {roundRobin:P1}");
    }

    [Fact]
    public void Hit_rate_rises_as_runners_specialise()
    {
        var workload = Workload(seed: 11, models: 8);
        var early = CacheHitRate(new HintAffinityPolicy(), workload[..50]);
        var overall = CacheHitRate(new HintAffinityPolicy(), workload);

        Assert.True(overall > early, $"first 50 requests {early:P1}, all {overall:P1}");
    }

    /// <summary>Model popularity skewed like Zipf 1.0 over <paramref name="models"/> models, deterministically.</summary>
    private static string[] Workload(int seed, int models)
    {
        var random = new Random(seed);
        var weights = Enumerable.Range(1, models).Select(rank => 1.0 / rank).ToArray();
        var total = weights.Sum();
        return [.. Enumerable.Range(0, Requests).Select(_ =>
        {
            var pick = random.NextDouble() * total;
            var model = 0;
            while ((pick -= weights[model]) > 0 && model < models - 1)
            {
                model++;
            }

            return $"model-{model}";
        })];
    }

    /// <summary>Two requests in flight at a time; each runner keeps an LRU of <see cref="CacheSlots"/> models and reports it as its hints.</summary>
    private static double CacheHitRate(IPlacementPolicy policy, string[] workload)
    {
        var dispatcher = new Dispatcher(policy, DispatcherOptions.Default);
        var caches = Enumerable.Range(0, RunnerCount).ToDictionary(i => $"s/cpu:{i}", _ => new List<string>());
        foreach (var runner in caches.Keys)
        {
            dispatcher.Index.Apply(Event(runner, kind: HintsEventKind.Started), T0);
        }

        var running = new Queue<Dispatch>();
        var hits = 0;
        for (var i = 0; i < workload.Length; i++)
        {
            dispatcher.Enqueue(Ticket(workload[i], $"r{i}", at: T0.AddMilliseconds(i)));
            foreach (var dispatch in dispatcher.Pump(T0.AddMilliseconds(i)))
            {
                var cache = caches[dispatch.RunnerId];
                var model = dispatch.Ticket.Request.Hint!;
                hits += cache.Remove(model) ? 1 : 0;
                cache.Insert(0, model);
                if (cache.Count > CacheSlots)
                {
                    cache.RemoveAt(cache.Count - 1);
                }

                running.Enqueue(dispatch);
            }

            while (running.Count >= 2 || (i == workload.Length - 1 && running.Count > 0))
            {
                var done = running.Dequeue();
                dispatcher.Index.Apply(Event(done.RunnerId, hints: [.. caches[done.RunnerId]]), T0);
                dispatcher.Complete(done.Ticket.RequestId, done.RunnerId);
            }
        }

        return hits / (double)workload.Length;
    }
}
