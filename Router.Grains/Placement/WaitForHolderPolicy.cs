using FalHints.Client.Contracts;
using FalHints.Router.Hints;

namespace FalHints.Router.Placement;

/// <summary>
/// FalHints' opt-in policy that may wait for a busy runner holding the request's hint (fal's contract does not allow
/// that, so it is not the default). Requests wait in the router's queue, never at a runner, so each one goes to
/// whichever holder frees first:
/// <list type="number">
/// <item>A free runner takes the oldest waiting request whose hint it holds.</item>
/// <item>A waiting hint gets a new copy on a free runner only when a load is expected to be quicker than waiting: no
/// runner holds it, or its backlog (requests waiting for it, over the copies serving it) would take longer to drain
/// than the load costs. The oldest such request goes first, to the free runner cheapest to repurpose.</item>
/// <item>A request without a hint goes to a free runner at once, the one whose hints carry the most recent demand
/// (the likeliest to hold its model); otherwise free runners stay free.</item>
/// </list>
/// It gives the same starvation guarantee as <see cref="HintAffinityPolicy"/>: once a request is the oldest of its
/// class, at most <see cref="PlacementContext.BypassLimit"/> younger ones start before it.
/// </summary>
public sealed class WaitForHolderPolicy : IPlacementPolicy
{
    // Recent demand per hint (halved every 1,000 placements), to send requests without a hint where they most likely hit.
    private readonly Dictionary<string, double> _demand = new(StringComparer.Ordinal);
    private int _placed;

    /// <inheritdoc />
    public string Name => PlacementPolicies.WaitForHolder;

    /// <inheritdoc />
    public PlacementChoice? Next(PlacementContext context)
    {
        var runners = context.Runners;
        var free = runners.Free;
        if (free.Count == 0 || context.Queue.Head is not { } head)
        {
            return null;
        }

        if (context.HeadDue)
        {
            return Record(PlacementChoice.Of(head, Candidates.BestFreeHolder(head, runners) ?? Candidates.CheapestToRepurpose(free)!));
        }

        if (Candidates.OldestHeld(context) is { } held)
        {
            return Record(held);
        }

        RequestTicket? oldest = null;
        foreach (var hint in context.Queue.HeadClassHints)
        {
            var waiting = context.Queue.OldestInHeadClassWith(hint)!;
            if ((oldest is null || context.Queue.StartsBefore(waiting, oldest)) && WorthLoading(hint, context))
            {
                oldest = waiting;
            }
        }

        if (context.Queue.Head.Request.Hint is null)
        {
            oldest = head;
        }
        else if (oldest is null)
        {
            foreach (var ticket in context.Queue.HeadClass)
            {
                if (ticket.Request.Hint is null)
                {
                    oldest = ticket;
                    break;
                }
            }
        }

        if (oldest is null)
        {
            return null;
        }

        return Record(PlacementChoice.Of(oldest, oldest.Request.Hint is null ? LikeliestToHold(free) : Candidates.CheapestToRepurpose(free)!));
    }

    private PlacementChoice Record(PlacementChoice choice)
    {
        if (choice.Ticket.Request.Hint is { } hint)
        {
            _demand[hint] = _demand.GetValueOrDefault(hint) + 1;
            if (++_placed % 1000 == 0)
            {
                foreach (var key in _demand.Keys.ToList())
                {
                    _demand[key] /= 2;
                }
            }
        }

        return choice;
    }

    /// <summary>For a request without a hint: the free runner whose hints carry the most recent demand (it most likely holds the model).</summary>
    private RunnerState LikeliestToHold(IReadOnlyCollection<RunnerState> free)
    {
        RunnerState? best = null;
        var bestCover = -1.0;
        foreach (var runner in free.OrderBy(r => r.RunnerId, StringComparer.Ordinal))
        {
            var cover = runner.Hints.Sum(h => _demand.GetValueOrDefault(h));
            if (cover > bestCover)
            {
                (best, bestCover) = (runner, cover);
            }
        }

        return best!;
    }

    /// <summary>
    /// True when a free runner should load <paramref name="hint"/>: nobody holds it, or the requests waiting for it would
    /// wait longer for its copies (each busy copy's expected time to free, then the backlog shared among them) than a load.
    /// </summary>
    private static bool WorthLoading(string hint, PlacementContext context)
    {
        var holders = context.Runners.Holding(hint);
        if (holders.Count == 0)
        {
            return true;
        }

        double copies = 0, soonestFree = double.MaxValue, inferenceMs = 0;
        foreach (var holder in holders)
        {
            if (holder.Draining)
            {
                continue;
            }

            var serviceMs = context.LoadCost.InferenceMs(holder);
            var loading = holder.Hints.Contains(hint) ? 0 : context.LoadCost.LoadMs(holder, hint);
            soonestFree = Math.Min(soonestFree, loading + serviceMs * (holder.InFlight - holder.Capacity + 1) / Math.Max(1, holder.Capacity));
            copies += Math.Max(1, holder.Capacity);
            inferenceMs += serviceMs;
        }

        if (copies == 0)
        {
            return true;
        }

        var backlogMs = soonestFree + context.Queue.CountInHeadClassWith(hint) * (inferenceMs / holders.Count) / copies;
        var loadMs = context.Runners.Free.Min(r => context.LoadCost.LoadMs(r, hint));
        return backlogMs > loadMs;
    }
}
