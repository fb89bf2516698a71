namespace FalHints.Router.Placement;

/// <summary>
/// fal's routing-hints contract: a free runner whose hints contain the request's hint exactly is preferred
/// (the least loaded among several); otherwise any free runner, at once, preferring runners that hold
/// nothing (they match anything), then those holding the fewest hints (cheapest to repurpose).
/// Ties go to the lowest runner id, so decisions are reproducible.
/// </summary>
public sealed class HintAffinityPolicy : IPlacementPolicy
{
    /// <inheritdoc />
    public PlacementDecision? Choose(string? hint, IReadOnlyCollection<RunnerView> runners)
    {
        RunnerView? bestMatch = null;
        RunnerView? bestOther = null;
        foreach (var runner in runners)
        {
            if (!runner.IsFree)
            {
                continue;
            }

            if (hint is not null && runner.Holds(hint))
            {
                if (bestMatch is null || CompareMatches(runner, bestMatch) < 0)
                {
                    bestMatch = runner;
                }
            }
            else if (bestOther is null || CompareOthers(runner, bestOther) < 0)
            {
                bestOther = runner;
            }
        }

        if (bestMatch is not null)
        {
            return new PlacementDecision(bestMatch.RunnerId, HintHit: true);
        }

        return bestOther is null ? null : new PlacementDecision(bestOther.RunnerId, HintHit: false);
    }

    private static int CompareMatches(RunnerView a, RunnerView b)
    {
        var byLoad = a.InFlight.CompareTo(b.InFlight);
        return byLoad != 0 ? byLoad : string.CompareOrdinal(a.RunnerId, b.RunnerId);
    }

    private static int CompareOthers(RunnerView a, RunnerView b)
    {
        var byHints = a.Hints.Length.CompareTo(b.Hints.Length);
        if (byHints != 0)
        {
            return byHints;
        }

        var byLoad = a.InFlight.CompareTo(b.InFlight);
        return byLoad != 0 ? byLoad : string.CompareOrdinal(a.RunnerId, b.RunnerId);
    }
}
