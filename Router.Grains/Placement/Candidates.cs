using FalHints.Client.Contracts;
using FalHints.Router.Hints;

namespace FalHints.Router.Placement;

/// <summary>
/// The choices FalHints' policies share: the best holder of a hint, the free runner whose load costs least, the oldest
/// request a free runner holds, and what runners have room for.
/// </summary>
public static class Candidates
{
    /// <summary>The free holder of <paramref name="hint"/> with the fewest requests in flight, then the most recent user of the hint, then the lower id.</summary>
    public static RunnerState? BestFreeHolder(string hint, IRunnerIndex runners)
    {
        RunnerState? best = null;
        foreach (var runner in runners.Holding(hint))
        {
            if (runner.IsFree && (best is null || CompareHolders(runner, best, hint) < 0))
            {
                best = runner;
            }
        }

        return best;
    }

    /// <summary>True when some runner that is not draining holds one of the request's hints (free or busy, loaded or loading).</summary>
    public static bool HasHolder(RequestTicket ticket, IRunnerIndex runners)
    {
        foreach (var hint in RequestHints.Of(ticket))
        {
            foreach (var holder in runners.Holding(hint))
            {
                if (!holder.Draining)
                {
                    return true;
                }
            }
        }

        return false;
    }

    /// <summary>The best free holder of the request's hints, the most specific hint first.</summary>
    public static RunnerState? BestFreeHolder(RequestTicket ticket, IRunnerIndex runners)
    {
        foreach (var hint in RequestHints.Of(ticket))
        {
            if (BestFreeHolder(hint, runners) is { } holder)
            {
                return holder;
            }
        }

        return null;
    }

    /// <summary>How much more room than a mean-sized model a runner must report before a load there is taken to evict nothing (model sizes vary).</summary>
    public const double RoomMargin = 1.5;

    // What evicting the only copy of a model costs, in its demand: every later request for it misses until it is loaded again.
    private const double OnlyCopyWeight = 3;

    /// <summary>
    /// For a policy that never waits: the free runner whose load of <paramref name="hint"/> costs the other requests
    /// least. While it loads it cannot serve what it holds, so each hint it holds costs its recent demand, shared with the
    /// other free holders of that hint if there are any, in proportion to how long the load takes there (a runner that
    /// keeps the hint in host memory only copies it to the device: <see cref="LoadShare"/>); without room, the model its
    /// cache evicts (its least recently used) costs its demand per copy, or three times its demand when it is the only
    /// copy, and on a runner with a host tier only a promotion's share of that, since the evicted model stays in host
    /// memory. A runner keeping the hint in host memory comes before every cold one (the request itself waits a
    /// promotion instead of a load), the cheapest of them first. Ties: fewest hints (none first), then least recently
    /// used, then least loaded, then the lower id.
    /// </summary>
    public static RunnerState? LeastBlocking(IReadOnlyCollection<RunnerState> free, IRunnerIndex runners, HintDemand demand, string? hint, ILoadCostEstimator loadCost)
    {
        var meanBytes = MeanModelBytes(runners);
        var freeHolders = new Dictionary<string, int>(StringComparer.Ordinal);
        RunnerState? best = null;
        var bestCost = 0.0;
        var bestWarm = false;
        foreach (var runner in free)
        {
            var cost = 0.0;
            foreach (var held in runner.AllHeld)
            {
                var wanted = demand.Of(held);
                if (wanted == 0)
                {
                    continue;
                }

                if (!freeHolders.TryGetValue(held, out var holding))
                {
                    holding = runners.Holding(held).Count(h => h.IsFree);
                    freeHolders[held] = holding;
                }

                // The other free holders share what this one cannot serve while it loads (it is one of the free holders).
                cost += wanted / Math.Max(1, holding);
            }

            var share = LoadShare(runner, hint, loadCost);
            cost *= share;
            if (!HasRoom(runner, meanBytes) && LeastRecentlyUsed(runner) is { } victim)
            {
                var copies = runners.Holding(victim).Count;
                cost += (copies > 1 ? demand.Of(victim) / copies : OnlyCopyWeight * demand.Of(victim)) * EvictionShare(runner, loadCost);
            }

            var warm = share < 1;
            if (best is null || (warm && !bestWarm) || (warm == bestWarm && (cost < bestCost || (cost == bestCost && CompareRepurposeCost(runner, best) < 0))))
            {
                (best, bestCost, bestWarm) = (runner, cost, warm);
            }
        }

        return best;
    }

    /// <summary>
    /// For a policy that waits for holders: the free runner where a load of <paramref name="hint"/> costs least and loses
    /// no model. One that keeps the hint in host memory first (the load is only a copy to the device), unless that copy
    /// would evict a model's only copy; then one with room, or holding nothing; then one whose least recently used model
    /// (the one its cache evicts) is a copy of a model other runners hold, the least demanded per copy first; then one
    /// that would evict an only copy, the least demanded first (a host tier keeps the evicted model, but every request
    /// for it misses until it is promoted again, so an eviction counts as one all the same). A warm runner whose
    /// promotion evicted an only copy had gone first, and each such promotion made the next: with a host tier on
    /// <c>zipf-drift</c> at 15% load the p99 was 329 ms against 299 ms without a tier; ranked with the cold runners it is
    /// 299 ms (BENCHMARKS.md lists every tiered figure this moved, the few worse ones included). Ties: the least demand served
    /// (<see cref="ServedDemand"/>, for a warm runner only its promotion's share), then fewest hints, then least recently
    /// used, then least loaded, then the lower id.
    /// </summary>
    public static RunnerState? LeastEvicting(IReadOnlyCollection<RunnerState> free, IRunnerIndex runners, HintDemand demand, string? hint, ILoadCostEstimator loadCost)
    {
        var meanBytes = MeanModelBytes(runners);
        RunnerState? best = null;
        (int Cold, int Loses, double Demand, double Served) bestCost = default;
        foreach (var runner in free)
        {
            var served = ServedDemand(runner, runners, demand);
            var share = LoadShare(runner, hint, loadCost);
            var load = share < 1 ? 0 : 1;
            (int, int, double, double) cost = (load, 0, 0, share * served);
            if (!HasRoom(runner, meanBytes) && LeastRecentlyUsed(runner) is { } victim)
            {
                var copies = runners.Holding(victim).Count;
                var loses = copies > 1 ? 1 : 2;
                cost = (loses == 2 ? 1 : load, loses, demand.Of(victim) / copies, share * served);
            }

            var order = best is null ? -1 : cost.CompareTo(bestCost);
            if (order < 0 || (order == 0 && CompareRepurposeCost(runner, best!) < 0))
            {
                (best, bestCost) = (runner, cost);
            }
        }

        return best;
    }

    /// <summary>
    /// What a load of <paramref name="hint"/> on <paramref name="runner"/> costs as a share of a load from the model store
    /// there: 1 for a cold load (or no hint), a promotion's share when the runner keeps the hint in host memory.
    /// </summary>
    public static double LoadShare(RunnerState runner, string? hint, ILoadCostEstimator loadCost)
    {
        var storeMs = hint is null ? 0 : loadCost.StoreLoadMs(runner);
        return storeMs > 0 ? Math.Min(1, loadCost.LoadMs(runner, hint!) / storeMs) : 1;
    }

    /// <summary>
    /// What evicting a model from <paramref name="runner"/>'s device costs as a share of losing it: 1 without a host tier;
    /// with one, the model stays in host memory and getting it back costs a promotion.
    /// </summary>
    public static double EvictionShare(RunnerState runner, ILoadCostEstimator loadCost)
    {
        var storeMs = loadCost.StoreLoadMs(runner);
        return runner.Cache.HostBudgetBytes > 0 && storeMs > 0 ? Math.Min(1, loadCost.PromotionMs(runner) / storeMs) : 1;
    }

    /// <summary>
    /// The demand <paramref name="runner"/> serves that would have to go elsewhere while it loads, or be lost if the
    /// load evicts it: for each hint it holds, the hint's recent demand over the number of runners holding it.
    /// </summary>
    public static double ServedDemand(RunnerState runner, IRunnerIndex runners, HintDemand demand)
    {
        double served = 0;
        foreach (var hint in runner.AllHeld)
        {
            var wanted = demand.Of(hint);
            if (wanted > 0)
            {
                served += wanted / Math.Max(1, runners.Holding(hint).Count);
            }
        }

        return served;
    }

    /// <summary>For a request without a hint: the free runner whose hints carry the most recent demand (it most likely holds the model), then the lower id.</summary>
    public static RunnerState LikeliestToHold(IReadOnlyCollection<RunnerState> free, HintDemand demand)
    {
        RunnerState? best = null;
        var bestCover = -1.0;
        foreach (var runner in free)
        {
            var cover = 0.0;
            foreach (var hint in runner.Hints)
            {
                cover += demand.Of(hint);
            }

            if (cover > bestCover || (cover == bestCover && string.CompareOrdinal(runner.RunnerId, best!.RunnerId) < 0))
            {
                (best, bestCover) = (runner, cover);
            }
        }

        return best!;
    }

    /// <summary>The mean size of one model the runners report holding, in bytes; 0 while none has reported its cache.</summary>
    public static double MeanModelBytes(IRunnerIndex runners)
    {
        double bytes = 0, models = 0;
        foreach (var runner in runners.All)
        {
            if (runner.Cache.BytesUsed > 0 && runner.Hints.Length > 0)
            {
                bytes += runner.Cache.BytesUsed;
                models += runner.Hints.Length;
            }
        }

        return models > 0 ? bytes / models : 0;
    }

    /// <summary>True when <paramref name="runner"/> reports room for one more model of about <paramref name="meanBytes"/> (with a margin: sizes vary), so a load there evicts nothing.</summary>
    /// <remarks>With <paramref name="evicting"/>, room for it once the runner's least recently used model is evicted (taken to be of the mean size).</remarks>
    public static bool HasRoom(RunnerState runner, double meanBytes, bool evicting = false) =>
        meanBytes > 0 && runner.Cache.BudgetBytes > 0 && runner.Cache.BudgetBytes - runner.Cache.BytesUsed >= (RoomMargin - (evicting ? 1 : 0)) * meanBytes;

    /// <summary>
    /// True when a load on <paramref name="runner"/> would evict the only copy of a model: it has no room for a model of
    /// about <paramref name="meanBytes"/>, and no other runner holds its least recently used model.
    /// </summary>
    public static bool EvictsOnlyCopy(RunnerState runner, IRunnerIndex runners, double meanBytes) =>
        !HasRoom(runner, meanBytes) && LeastRecentlyUsed(runner) is { } victim && runners.Holding(victim).Count < 2;

    /// <summary>The hint the runner used least recently, as the router dispatched them (its cache evicts it first); null when it holds none.</summary>
    public static string? LeastRecentlyUsed(RunnerState runner)
    {
        string? victim = null;
        foreach (var hint in runner.Hints)
        {
            if (victim is null || runner.HintLastUsed(hint) < runner.HintLastUsed(victim))
            {
                victim = hint;
            }
        }

        return victim;
    }

    /// <summary>
    /// The oldest request of the head's class that a free runner holds a hint for, with that runner, found through the
    /// queue's hint index (no depth limit, so a long queue never hides a request a runner could serve). It walks
    /// whichever side is smaller: the distinct hints waiting in the queue, or the free runners' hints.
    /// </summary>
    public static PlacementChoice? OldestHeld(PlacementContext context)
    {
        var queue = context.Queue;
        var runners = context.Runners;
        RequestTicket? oldest = null;
        void Consider(RequestTicket? candidate)
        {
            if (candidate is not null && (oldest is null || queue.StartsBefore(candidate, oldest)))
            {
                oldest = candidate;
            }
        }

        if (queue.HeadClassHints.Count <= runners.Free.Count)
        {
            foreach (var hint in queue.HeadClassHints)
            {
                if (BestFreeHolder(hint, runners) is not null)
                {
                    Consider(queue.OldestInHeadClassWith(hint));
                }
            }
        }
        else
        {
            foreach (var runner in runners.Free)
            {
                foreach (var held in runner.Hints)
                {
                    Consider(queue.OldestInHeadClassWith(held));
                }

                foreach (var held in runner.Loading)
                {
                    Consider(queue.OldestInHeadClassWith(held));
                }

                foreach (var held in runner.Sent)
                {
                    Consider(queue.OldestInHeadClassWith(held));
                }
            }
        }

        return oldest is not null && BestFreeHolder(oldest, runners) is { } holder ? PlacementChoice.Of(oldest, holder) : null;
    }

    /// <summary>Fewer requests in flight first, then the more recent user of the hint, then the lower id (reproducible).</summary>
    private static int CompareHolders(RunnerState a, RunnerState b, string hint)
    {
        var load = a.InFlight.CompareTo(b.InFlight);
        if (load != 0)
        {
            return load;
        }

        var recency = b.HintLastUsed(hint).CompareTo(a.HintLastUsed(hint));
        return recency != 0 ? recency : string.CompareOrdinal(a.RunnerId, b.RunnerId);
    }

    private static int CompareRepurposeCost(RunnerState a, RunnerState b)
    {
        var held = a.HeldCount.CompareTo(b.HeldCount);
        if (held != 0)
        {
            return held;
        }

        var used = a.LastUsed.CompareTo(b.LastUsed);
        if (used != 0)
        {
            return used;
        }

        var load = a.InFlight.CompareTo(b.InFlight);
        return load != 0 ? load : string.CompareOrdinal(a.RunnerId, b.RunnerId);
    }
}
