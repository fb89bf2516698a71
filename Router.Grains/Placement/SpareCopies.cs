using FalHints.Router.Hints;

namespace FalHints.Router.Placement;

/// <summary>
/// Background copies of the most demanded hints into memory nobody uses. When a free runner, not the last free one,
/// reports room for another model, the hint with the most recent demand per copy that it does not hold is loaded there,
/// provided that demand per copy is more than half of what the runner serves already (the load keeps it busy, and
/// what it holds goes to other runners or waits meanwhile). A runner without room qualifies when its cache would evict
/// a copy of a model other runners hold too and the new copy is worth more than twice that stale one, so copies follow
/// demand as it drifts. Only hints some runner holds are copied: no request ever waits for a prewarm of a model nobody
/// has. After a look that finds nothing to copy, the next comes <see cref="LookEvery"/> placements later. Each policy
/// keeps one.
/// </summary>
public sealed class SpareCopies(HintDemand demand)
{
    /// <summary>Recent requests a hint needs before it is worth a copy, so a cold start does not copy noise.</summary>
    public const double MinDemand = 2;

    /// <summary>
    /// Placements between a look that found nothing to copy and the next: memory rarely frees up, and copies made at
    /// every chance churn as demand drifts. (The first look comes at the first chance, usually before any hint is in
    /// demand, so a cold start copies nothing for its first placements: models not seen yet get the memory first.)
    /// </summary>
    public const int LookEvery = 64;

    private long _nextLook;

    /// <summary>The next spare copy to load, or null.</summary>
    public PrewarmChoice? Next(PlacementContext context)
    {
        var runners = context.Runners;
        if (!context.CanPrewarm || runners.Free.Count < 2 || demand.Placed < _nextLook || demand.Hottest.Count == 0)
        {
            return null;
        }

        var meanBytes = Candidates.MeanModelBytes(runners);
        RunnerState? target = null;
        var targetServed = 0.0;
        var targetStale = 0.0;
        foreach (var runner in runners.Free)
        {
            // Room for a model, or (with a little room) a stale copy of a model others hold that the load would evict.
            var stale = 0.0;
            if (!Candidates.HasRoom(runner, meanBytes))
            {
                if (Candidates.LeastRecentlyUsed(runner) is not { } victim || runners.Holding(victim).Count < 2
                    || !Candidates.HasRoom(runner, meanBytes, evicting: true))
                {
                    continue;
                }

                stale = demand.Of(victim) / runners.Holding(victim).Count;
            }

            var served = Candidates.ServedDemand(runner, runners, demand);
            if (target is null || served < targetServed || (served == targetServed && string.CompareOrdinal(runner.RunnerId, target.RunnerId) < 0))
            {
                (target, targetServed, targetStale) = (runner, served, stale);
            }
        }

        string? best = null;
        var bestPerCopy = 0.0;
        if (target is not null)
        {
            foreach (var hint in demand.Hottest)
            {
                var copies = runners.Holding(hint).Count;
                var wanted = demand.Of(hint);
                if (copies == 0 || wanted < MinDemand || target.Holds(hint))
                {
                    continue;
                }

                if (wanted / copies > bestPerCopy)
                {
                    (best, bestPerCopy) = (hint, wanted / copies);
                }
            }
        }

        // A stale copy gives way only to a copy worth clearly more, so copies do not flip back and forth.
        if (best is not null && targetStale > 0 && bestPerCopy * runners.Holding(best).Count / (runners.Holding(best).Count + 1) <= 2 * targetStale)
        {
            best = null;
        }

        if (target is null || best is null || 2 * bestPerCopy <= targetServed)
        {
            _nextLook = demand.Placed + LookEvery;
            return null;
        }

        return PrewarmChoice.Of(best, target);
    }
}
