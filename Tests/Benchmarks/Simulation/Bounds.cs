namespace FalHints.Benchmarks.Simulation;

/// <summary>What no router can beat on a workload, and what a router that never waits for a busy holder can reach at best.</summary>
public static class Bounds
{
    /// <summary>
    /// Hit rate of Belady's MIN on one cache pooling every runner's memory, fed the requests in arrival order: it
    /// evicts the model whose next use is farthest. No placement over the same total memory can hit more often when
    /// models are of equal size; with sizes that differ it is the standard (near-optimal) reference.
    /// </summary>
    public static double BeladyHitRate(Workload workload) => Belady(workload).Hits / (double)workload.Requests.Count;

    /// <summary>
    /// The throughput no policy can beat (requests per second): every request's inference plus the loads of Belady's
    /// misses, spread perfectly over all runner slots, and never sooner than the last arrival.
    /// </summary>
    public static double CapacityBoundRps(Workload workload)
    {
        var requests = workload.Requests;
        var span = requests[^1].ArrivalMs + requests[^1].ServiceMs - requests[0].ArrivalMs;
        return requests.Count / (Math.Max(span, WorkMs(workload) / Slots(workload)) / 1000);
    }

    /// <summary>True when the runners can do all the work (inference plus Belady's loads) within the time the requests take to arrive.</summary>
    public static bool Servable(Workload workload) =>
        WorkMs(workload) / Slots(workload) <= workload.Requests[^1].ArrivalMs - workload.Requests[0].ArrivalMs;

    /// <summary>Latency percentiles of inference alone: no queueing, no loads.</summary>
    public static (double P50Ms, double P99Ms) LatencyFloor(Workload workload)
    {
        var service = workload.Requests.Select(r => r.ServiceMs).Order().ToArray();
        return (Simulator.Percentile(service, 0.50), Simulator.Percentile(service, 0.99));
    }

    /// <summary>
    /// The never-wait ceiling: the best hit rate found for a policy that never waits for a busy holder, given an oracle
    /// that knows each phase's demand. At the start of each phase (popularity shifts, the flash crowd) the models are laid
    /// out from that demand: one copy of each, then extra copies of the most demanded per copy, as many as memory allows;
    /// every count of extra copies is tried, and so is keeping what the runners hold, and the best kept. The layout is
    /// loaded, not given: each runner is busy loading the models it did not hold before. Requests then follow the
    /// never-wait rule: a free runner holding the model if any, else a free runner at once (a miss), else the queue; a
    /// runner that frees up takes the oldest request it holds, else the oldest. A miss loads its model into the runner's
    /// memory, whose cache evicts its least recently used models as the runners' caches do (a router chooses where a
    /// load goes, not what a runner evicts); the free runner a miss goes to is tried both ways: the one holding fewest
    /// models, and the one serving the least demand per copy. A request without a hint goes to the free runner holding
    /// the most demand. Every model loaded fits the memory there is. An estimate reached by a realisable (if
    /// clairvoyant) placement, not a proof that none does better.
    /// </summary>
    public static double NeverWaitCeiling(Workload workload)
    {
        var phases = workload.PhaseStarts;
        var held = Enumerable.Range(0, workload.Runners).Select(_ => new HashSet<string>(StringComparer.Ordinal)).ToArray();
        var total = 0;
        for (var p = 0; p < phases.Count; p++)
        {
            var end = p + 1 < phases.Count ? phases[p + 1] : workload.Requests.Count;
            var demand = new Dictionary<string, double>(StringComparer.Ordinal);
            for (var i = phases[p]; i < end; i++)
            {
                demand[workload.Requests[i].Model] = demand.GetValueOrDefault(workload.Requests[i].Model) + 1;
            }

            var layouts = new List<HashSet<string>[]> { held };
            for (var extra = 0; Layout(workload, demand, extra) is { } layout; extra++)
            {
                layouts.Add(layout);
            }

            (int Hits, HashSet<string>[] Held) best = (-1, held);
            foreach (var layout in layouts)
            {
                foreach (var leastServed in (bool[])[false, true])
                {
                    var run = NeverWaitPhase(workload, phases[p], end, demand, held, layout, leastServed);
                    if (run.Hits > best.Hits)
                    {
                        best = run;
                    }
                }
            }

            total += best.Hits;
            held = best.Held;
        }

        return total / (double)workload.Requests.Count;
    }

    private static int Slots(Workload workload) => workload.Runners * workload.MaxMultiplexing;

    private static double WorkMs(Workload workload) => workload.Requests.Sum(r => r.ServiceMs) + Belady(workload).MissLoadMs;

    private static (int Hits, double MissLoadMs) Belady(Workload workload)
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
        var missLoadMs = 0.0;
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
                missLoadMs += workload.LoadMs(model);
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

        return (hits, missLoadMs);
    }

    /// <summary>
    /// One copy of each demanded model (most demanded first, while memory lasts), then <paramref name="extra"/> more
    /// copies, each of the model with the most demand per copy; copies packed largest first onto the runner with the
    /// least demand so far that has room and no copy yet. Null when the extra copies do not fit.
    /// </summary>
    private static HashSet<string>[]? Layout(Workload workload, Dictionary<string, double> demand, int extra)
    {
        var copies = demand.Keys.ToDictionary(m => m, _ => 1, StringComparer.Ordinal);
        var byDemand = demand.OrderByDescending(e => e.Value).ThenBy(e => e.Key, StringComparer.Ordinal).Select(e => e.Key).ToList();
        for (var k = 0; k < extra; k++)
        {
            var model = byDemand.Where(m => copies[m] < workload.Runners).OrderByDescending(m => demand[m] / (double)copies[m]).FirstOrDefault();
            if (model is null)
            {
                return null;
            }

            copies[model]++;
        }

        var runners = Enumerable.Range(0, workload.Runners).Select(_ => new HashSet<string>(StringComparer.Ordinal)).ToArray();
        var free = Enumerable.Repeat(workload.RunnerMemoryBytes, workload.Runners).ToArray();
        var load = new double[workload.Runners];
        var placed = 0;
        foreach (var model in byDemand.OrderByDescending(m => workload.ModelBytes[m]))
        {
            for (var c = 0; c < copies[model]; c++)
            {
                var target = -1;
                for (var r = 0; r < runners.Length; r++)
                {
                    if (free[r] >= workload.ModelBytes[model] && !runners[r].Contains(model) && (target < 0 || load[r] < load[target]))
                    {
                        target = r;
                    }
                }

                if (target < 0)
                {
                    // Out of room. With extra copies asked for, this many do not fit; without, the model is left out (it will miss).
                    if (extra > 0)
                    {
                        return null;
                    }

                    break;
                }

                runners[target].Add(model);
                free[target] -= workload.ModelBytes[model];
                load[target] += demand[model] / (double)copies[model];
                placed++;
            }
        }

        return placed == 0 ? null : runners;
    }

    /// <summary>
    /// Hits of requests [<paramref name="start"/>, <paramref name="end"/>) under the never-wait rule, the runners first
    /// loading <paramref name="layout"/> over what they <paramref name="held"/>; also what they hold at the end.
    /// </summary>
    private static (int Hits, HashSet<string>[] Held) NeverWaitPhase(
        Workload workload, int start, int end, Dictionary<string, double> demand, HashSet<string>[] held, HashSet<string>[] layout, bool leastServed)
    {
        var requests = workload.Requests;
        var slots = workload.MaxMultiplexing;
        var runners = layout.Length;
        var contents = layout.Select(l => new HashSet<string>(l, StringComparer.Ordinal)).ToArray();
        var bytes = contents.Select(c => c.Sum(m => workload.ModelBytes[m])).ToArray();
        var copies = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var model in contents.SelectMany(c => c))
        {
            copies[model] = copies.GetValueOrDefault(model) + 1;
        }

        var busy = new int[runners];
        var completions = new PriorityQueue<int, double>();
        var queue = new LinkedList<int>();
        var hits = 0;
        var t0 = requests[start].ArrivalMs;
        for (var r = 0; r < runners; r++)
        {
            // The layout is loaded: the runner takes nothing until the models it lacked are in.
            var loadMs = contents[r].Where(m => !held[r].Contains(m)).Sum(workload.LoadMs);
            if (loadMs > 0)
            {
                busy[r] = slots;
                for (var s = 0; s < slots; s++)
                {
                    completions.Enqueue(r, t0 + loadMs);
                }
            }
        }

        double PerCopy(string model) => demand.GetValueOrDefault(model) / Math.Max(1, copies.GetValueOrDefault(model));

        // Last use per runner and model, for the runners' LRU caches (the layout counts as used before anything else).
        var used = new Dictionary<(int Runner, string Model), long>();
        long tick = 0;

        void Run(int runner, int request, double now)
        {
            var model = requests[request].Model;
            var hit = contents[runner].Contains(model);
            hits += hit ? 1 : 0;
            busy[runner]++;
            if (!hit)
            {
                // The miss's model stays; to make room the runner's cache evicts its least recently used models, as runners do.
                var size = workload.ModelBytes[model];
                while (bytes[runner] + size > workload.RunnerMemoryBytes && contents[runner].Count > 0)
                {
                    var victim = contents[runner].OrderBy(m => used.GetValueOrDefault((runner, m))).ThenBy(m => m, StringComparer.Ordinal).First();
                    contents[runner].Remove(victim);
                    bytes[runner] -= workload.ModelBytes[victim];
                    copies[victim]--;
                }

                contents[runner].Add(model);
                bytes[runner] += size;
                copies[model] = copies.GetValueOrDefault(model) + 1;
            }

            used[(runner, model)] = ++tick;

            completions.Enqueue(runner, now + requests[request].ServiceMs + (hit ? 0 : workload.LoadMs(model)));
        }

        int FreeRunner(SimRequest request)
        {
            var any = -1;
            var anyScore = 0.0;
            for (var r = 0; r < runners; r++)
            {
                if (busy[r] >= slots)
                {
                    continue;
                }

                if (request.Hinted && contents[r].Contains(request.Model))
                {
                    return r;
                }

                // Unhinted: the runner holding the most demand (most likely the model); a miss: fewest models, or least served.
                var score = !request.Hinted ? -contents[r].Sum(m => demand.GetValueOrDefault(m))
                    : leastServed ? contents[r].Sum(PerCopy)
                    : contents[r].Count;
                if (any < 0 || score < anyScore)
                {
                    (any, anyScore) = (r, score);
                }
            }

            return any;
        }

        var next = start;
        while (next < end || completions.Count > 0)
        {
            if (completions.TryPeek(out var runner, out var doneAt) && (next >= end || doneAt <= requests[next].ArrivalMs))
            {
                completions.Dequeue();
                busy[runner]--;
                var node = queue.First;
                while (node is not null && !(requests[node.Value].Hinted && contents[runner].Contains(requests[node.Value].Model)))
                {
                    node = node.Next;
                }

                node ??= queue.First;
                if (node is not null)
                {
                    queue.Remove(node);
                    Run(runner, node.Value, doneAt);
                }

                continue;
            }

            var request = next++;
            var free = FreeRunner(requests[request]);
            if (free >= 0)
            {
                Run(free, request, requests[request].ArrivalMs);
            }
            else
            {
                queue.AddLast(request);
            }
        }

        return (hits, contents);
    }
}
