using FalHints.Client.Contracts;

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
/// <item>A request without a hint goes to a free runner at once; otherwise free runners stay free.</item>
/// </list>
/// It gives the same starvation guarantee as <see cref="HintAffinityPolicy"/>: once a request is the oldest of its
/// class, at most <see cref="PlacementContext.BypassLimit"/> younger ones start before it.
/// </summary>
public sealed class WaitForHolderPolicy : IPlacementPolicy
{
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
            return PlacementChoice.Of(head, Candidates.BestFreeHolder(head, runners) ?? Candidates.CheapestToRepurpose(free)!);
        }

        if (Candidates.OldestHeld(context) is { } held)
        {
            return held;
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

        return oldest is null ? null : PlacementChoice.Of(oldest, Candidates.CheapestToRepurpose(free)!);
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
