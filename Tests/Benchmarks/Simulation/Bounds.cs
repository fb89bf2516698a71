namespace FalHints.Benchmarks.Simulation;

/// <summary>What no router can beat on a workload.</summary>
public static class Bounds
{
    /// <summary>
    /// Hit rate of Belady's MIN on one cache pooling every runner's memory, fed the requests in arrival order: it
    /// evicts the model whose next use is farthest. No placement over the same total memory can hit more often when
    /// models are of equal size; with sizes that differ it is the standard (near-optimal) reference.
    /// </summary>
    public static double BeladyHitRate(Workload workload)
    {
        var requests = workload.Requests;
        var nextUse = new int[requests.Count];
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = requests.Count - 1; i >= 0; i--)
        {
            nextUse[i] = seen.GetValueOrDefault(requests[i].Model, int.MaxValue);
            seen[requests[i].Model] = i;
        }

        var capacity = workload.Runners * workload.RunnerMemoryBytes;
        var cached = new Dictionary<string, int>(StringComparer.Ordinal);
        var byNextUse = new SortedSet<(int NextUse, string Model)>();
        long used = 0;
        var hits = 0;
        for (var i = 0; i < requests.Count; i++)
        {
            var model = requests[i].Model;
            if (cached.Remove(model, out var previous))
            {
                hits++;
                byNextUse.Remove((previous, model));
            }
            else
            {
                used += workload.ModelBytes[model];
            }

            cached[model] = nextUse[i];
            byNextUse.Add((nextUse[i], model));
            // Evict the farthest next use, which may be the model just used (then it is simply not kept).
            while (used > capacity)
            {
                var (_, victim) = byNextUse.Max;
                byNextUse.Remove(byNextUse.Max);
                cached.Remove(victim);
                used -= workload.ModelBytes[victim];
            }
        }

        return hits / (double)requests.Count;
    }

    /// <summary>Latency percentiles of inference alone: no queueing, no loads.</summary>
    public static (double P50Ms, double P99Ms) LatencyFloor(Workload workload)
    {
        var service = workload.Requests.Select(r => r.ServiceMs).Order().ToArray();
        return (Simulator.Percentile(service, 0.50), Simulator.Percentile(service, 0.99));
    }
}
