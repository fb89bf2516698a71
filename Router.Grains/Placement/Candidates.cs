using FalHints.Client.Contracts;
using FalHints.Router.Hints;

namespace FalHints.Router.Placement;

/// <summary>The choices FalHints' policies share: the best holder of a hint, the runner cheapest to repurpose, the oldest request a free runner holds.</summary>
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

    /// <summary>The free runner whose repurposing costs least: holding fewest hints (none first), then least recently used, then least loaded, then the lower id.</summary>
    public static RunnerState? CheapestToRepurpose(IEnumerable<RunnerState> free)
    {
        RunnerState? best = null;
        foreach (var runner in free)
        {
            if (best is null || CompareRepurposeCost(runner, best) < 0)
            {
                best = runner;
            }
        }

        return best;
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
