using FalHints.Client.Contracts;
using FalHints.Router.Hints;

namespace FalHints.Router.Placement;

/// <summary>
/// FalHints' opt-in policy that may wait for a busy runner holding the request's hint (fal's contract does not allow
/// that, so it is not the default). Requests wait in the router's queue, never at a runner, so each one goes to
/// whichever holder frees first:
/// <list type="number">
/// <item>Under sustained overload, a waiting request whose hint no runner holds is loaded first, on a free runner whose
/// load loses no model's only copy, even one that holds waiting requests (<see cref="OrphanWithoutEviction"/>).</item>
/// <item>A free runner takes the oldest waiting request whose hint it holds.</item>
/// <item>A waiting hint that no runner holds is loaded by its oldest request, on the free runner where the load costs
/// least and loses no model (<see cref="Candidates.LeastEvicting"/>: one keeping the hint in host memory first, unless
/// its copy to the device would evict a model's only copy, then room or a host tier, then one whose cache evicts a copy
/// of a model others hold).</item>
/// <item>A waiting hint whose backlog (requests waiting for it, over the copies serving it) would take longer to drain
/// than a load gets another copy, loaded in the background on the free runner where the load loses no model, so no
/// request pays for the load: each still goes to whichever holder frees first, the new copy included. The hint whose
/// oldest request waits longest gets it first; under sustained overload, the hint whose backlog is longest. (Where the
/// app refuses background loads, the oldest such request loads the copy itself.)</item>
/// <item>A request without a hint goes to a free runner at once, the one whose hints carry the most recent demand
/// (the likeliest to hold its model); otherwise free runners stay free.</item>
/// </list>
/// With runners to spare it also copies the most demanded hints into memory nobody uses (<see cref="SpareCopies"/>),
/// which shortens the waits for a busy holder. It gives the same starvation guarantee as
/// <see cref="HintAffinityPolicy"/>: once a request is the oldest of its class and
/// <see cref="PlacementContext.BypassLimit"/> younger ones have started before it, it starts on the next free holder of
/// its hint, or on the next free runner when nobody holds it.
/// </summary>
public sealed class WaitForHolderPolicy : IPlacementPolicy
{
    /// <summary>
    /// Loads' worth of queued work per runner slot from which the queue counts as overloaded (see
    /// <see cref="OrphanWithoutEviction"/>): at 60% load the queue of this policy, which waits for holders, reaches about
    /// one load's worth at times, and counting that as overload cost its p99 there.
    /// </summary>
    public const double OverloadLoads = 4;

    private readonly HintDemand _demand = new();
    private readonly SpareCopies _spare;
    private PlacementContext? _fleetContext;
    private Fleet _fleet;

    /// <summary>A policy with no demand seen yet.</summary>
    public WaitForHolderPolicy() => _spare = new SpareCopies(_demand);

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

        // A head that is due starts first on a free holder of its hint, or, when nobody holds its hint, on the next free
        // runner; while its holders are all busy it waits for the first of them.
        if (context.HeadDue && (Candidates.BestFreeHolder(head, runners) is not null || !Candidates.HasHolder(head, runners)))
        {
            return Record(PlacementChoice.Of(head, Candidates.BestFreeHolder(head, runners) ?? Candidates.LeastEvicting(free, runners, _demand, head.Request.Hint, context.LoadCost)!));
        }

        var fleet = FleetOf(context);
        if (OrphanWithoutEviction(context, fleet) is { } orphan)
        {
            return Record(orphan);
        }

        if (Candidates.OldestHeld(context) is { } held)
        {
            return Record(held);
        }

        var backlog = context.CanPrewarm ? BacklogCopy(context, fleet) : null;
        RequestTicket? oldest = null;
        var cost = new CopyCost(context, fleet);
        foreach (var hint in context.Queue.HeadClassHints)
        {
            var waiting = context.Queue.OldestInHeadClassWith(hint)!;
            if ((oldest is null || context.Queue.StartsBefore(waiting, oldest))
                && (runners.Holding(hint).Count == 0 || (!context.CanPrewarm && BacklogMs(hint, context) > cost.Of(hint))))
            {
                oldest = waiting;
            }
        }

        if (head.Request.Hint is null)
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

        // The hint that gets a background copy (Prewarm) goes first when its oldest request is older than this one (below
        // overload, the oldest request of any hint that needs a copy); then this one is placed.
        if (oldest is null || (backlog is { } copy && oldest.Request.Hint is not null && context.Queue.StartsBefore(copy.Oldest, oldest)))
        {
            return null;
        }

        return Record(PlacementChoice.Of(oldest, oldest.Request.Hint is null ? Candidates.LikeliestToHold(free, _demand) : Candidates.LeastEvicting(free, runners, _demand, oldest.Request.Hint, context.LoadCost)!));
    }

    /// <inheritdoc />
    public PrewarmChoice? Prewarm(PlacementContext context) =>
        BacklogCopy(context, FleetOf(context)) is { } copy ? PrewarmChoice.Of(copy.Hint, copy.Target) : _spare.Next(context);

    /// <summary>
    /// The waiting hint that needs another copy, with its oldest request and the free runner to load it on; null when none
    /// does. A hint some runner holds needs one when its requests would wait longer for its copies (each busy copy's
    /// expected time to free, then the backlog shared among them: <see cref="BacklogMs"/>) than a copy's load
    /// (<see cref="CopyCost"/>). Of those, the one whose oldest request waits longest; under sustained overload
    /// (<see cref="Fleet.Overloaded"/>) the one whose backlog is longest (of equal ones, the one waiting longest). Under
    /// overload every hot hint's backlog outlasts a load and a free runner is rare (one is free only when nothing it holds is waiting), so which hint gets it decides
    /// where the excess piles up: by the oldest request, the copies went to rarely used hints whose first load had come
    /// late, while the most used model kept one copy for the first 63 s of a flash crowd with a thousand requests waiting
    /// for it, and at the end of the run six copies of it, one per runner, drained that backlog (27 s of loads). By the
    /// longest backlog the most used models get their copies as their backlogs build (ten seeds: 61 loads against 70,
    /// throughput 95% of the capacity bound against 94%, p99 74 s against 90 s). Copying for the holders' whole backlog
    /// (every hint they hold), which an earlier version did under overload, never changed a figure once the longest
    /// backlog went first, and is gone.
    /// </summary>
    private (string Hint, RequestTicket Oldest, RunnerState Target)? BacklogCopy(PlacementContext context, Fleet fleet)
    {
        var runners = context.Runners;
        if (runners.Free.Count == 0)
        {
            return null;
        }

        string? copy = null;
        RequestTicket? oldest = null;
        var longestMs = double.NegativeInfinity;
        var cost = new CopyCost(context, fleet);
        var overloaded = fleet.Overloaded;
        foreach (var hint in context.Queue.HeadClassHints)
        {
            // Below overload only a hint waiting longer than the best so far can win, so the others are not measured.
            var waiting = context.Queue.OldestInHeadClassWith(hint)!;
            var older = oldest is null || context.Queue.StartsBefore(waiting, oldest);
            if ((!overloaded && !older) || runners.Holding(hint).Count == 0)
            {
                continue;
            }

            var backlogMs = BacklogMs(hint, context);
            if (backlogMs > cost.Of(hint) && (!overloaded || backlogMs > longestMs || (backlogMs == longestMs && older)))
            {
                (copy, oldest, longestMs) = (hint, waiting, backlogMs);
            }
        }

        return copy is not null && Candidates.LeastEvicting([.. runners.Free.Where(r => !r.Holds(copy))], runners, _demand, copy, context.LoadCost) is { } target
            ? (copy, oldest!, target)
            : null;
    }

    /// <summary>
    /// Under sustained overload, the oldest waiting request whose hint no runner holds, on a free runner where its load
    /// loses no model's only copy (room, or an eviction of a copy others hold), even when that runner could serve a
    /// request it holds instead; null otherwise. Overload here: the queue holds at least <see cref="OverloadLoads"/> loads'
    /// worth of work for every runner slot and the request has waited longer than a load, so no runner is about to run
    /// out of work and the load only delays work that waits anyway. Without this such a load waits for a runner with
    /// nothing to serve, which under overload is one holding only rarely used models, and its eviction of one of them (an
    /// only copy) makes the next such load: a chain of reloads from storage that ran on until the queue drained. Off while
    /// requests without a hint wait: they hit only where their model happens to be, and the copies this would evict are
    /// what serves them.
    /// </summary>
    private PlacementChoice? OrphanWithoutEviction(PlacementContext context, Fleet fleet)
    {
        // The cheap test first: no free runner sees the queue as overloaded.
        var runners = context.Runners;
        bool Overloads(RunnerState runner) => fleet.QueuedMsPerSlot >= OverloadLoads * context.LoadCost.StoreLoadMs(runner);
        if (!runners.Free.Any(Overloads))
        {
            return null;
        }

        RequestTicket? oldest = null;
        var hinted = 0;
        foreach (var hint in context.Queue.HeadClassHints)
        {
            var waiting = context.Queue.OldestInHeadClassWith(hint)!;
            hinted += context.Queue.CountInHeadClassWith(hint);
            if ((oldest is null || context.Queue.StartsBefore(waiting, oldest)) && runners.Holding(hint).Count == 0)
            {
                oldest = waiting;
            }
        }

        if (oldest is null || hinted < context.Queue.Count)
        {
            return null;
        }

        var waitedMs = (context.Now - oldest.AcceptedAt).TotalMilliseconds;
        List<RunnerState> keeping = [.. runners.Free.Where(r => waitedMs >= context.LoadCost.StoreLoadMs(r)
            && Overloads(r) && !Candidates.EvictsOnlyCopy(r, runners, fleet.MeanModelBytes))];
        return keeping.Count == 0 ? null : PlacementChoice.Of(oldest, Candidates.LeastEvicting(keeping, runners, _demand, oldest.Request.Hint, context.LoadCost)!);
    }

    /// <summary>
    /// The fleet's figures for a decision at <paramref name="context"/>: what comes from the runners' reports (slots, mean
    /// inference and load times, model sizes) cannot change while the dispatcher asks again within one pump, which uses
    /// one context, so it is gathered once per context; the queue's length is read each time. (A caller that kept one
    /// context across changes to the runners' reports would get stale figures; the dispatcher builds one per pump.)
    /// </summary>
    private Fleet FleetOf(PlacementContext context)
    {
        if (!ReferenceEquals(_fleetContext, context))
        {
            (_fleetContext, _fleet) = (context, Fleet.Of(context));
        }

        return _fleet with { Queued = context.Queue.Count };
    }

    private PlacementChoice Record(PlacementChoice choice)
    {
        _demand.Record(choice.Ticket.Request.Hint);
        return choice;
    }

    /// <summary>
    /// How long the requests waiting for <paramref name="hint"/> (a hint some runner holds) would wait for its copies: the
    /// soonest a busy copy frees, then the backlog shared among the copies (draining holders left out).
    /// </summary>
    private static double BacklogMs(string hint, PlacementContext context)
    {
        var holders = context.Runners.Holding(hint);
        double copies = 0, soonestFree = double.MaxValue, inferenceMs = 0, serving = 0;
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
            serving++;
        }

        return copies == 0 ? double.MaxValue : soonestFree + context.Queue.CountInHeadClassWith(hint) * (inferenceMs / serving) / copies;
    }

    /// <summary>
    /// What a copy of a hint costs on the cheapest free runner. A copy into room costs its load, from host memory where the
    /// runner keeps the model warm. A copy that evicts costs a load from storage even when warm: what it pushes out of the
    /// device is as dear to bring back, and with cheap promotions counted alone every short backlog made a copy, and the
    /// copies evicted the models' only copies. One per decision, looking over the free runners once at its first use: a
    /// free runner that neither holds the hint nor keeps models warm with room costs its load from storage whatever the
    /// hint, so each hint looks only at the cheapest such runner (all of them when that one holds it), its own holders
    /// and the runners keeping models warm with room.
    /// </summary>
    private sealed class CopyCost(PlacementContext context, Fleet fleet)
    {
        private List<RunnerState>? _warmWithRoom;
        private RunnerState? _cheapest;
        private double _cheapestMs = double.PositiveInfinity;

        /// <summary>The cost of a copy of <paramref name="hint"/>; infinite when no runner is free.</summary>
        public double Of(string hint)
        {
            if (_warmWithRoom is null)
            {
                _warmWithRoom = [];
                foreach (var runner in context.Runners.Free)
                {
                    if (KeepsWarmWithRoom(runner))
                    {
                        _warmWithRoom.Add(runner);
                    }
                    else if (context.LoadCost.StoreLoadMs(runner) is var storeMs && storeMs < _cheapestMs)
                    {
                        (_cheapest, _cheapestMs) = (runner, storeMs);
                    }
                }
            }

            // A free runner that has no host tier with room and does not hold the hint costs a load from storage whatever
            // the hint: the cheapest of them, unless it holds this hint. The others cost what the estimator says for the
            // hint: a holder nothing (as runners report), a runner keeping it warm with room a promotion.
            var best = _cheapestMs;
            if (_cheapest is not null && _cheapest.Holds(hint))
            {
                best = double.PositiveInfinity;
                foreach (var runner in context.Runners.Free)
                {
                    if (!runner.Holds(hint) && !KeepsWarmWithRoom(runner))
                    {
                        best = Math.Min(best, context.LoadCost.StoreLoadMs(runner));
                    }
                }
            }

            foreach (var runner in _warmWithRoom)
            {
                if (!runner.Holds(hint))
                {
                    best = Math.Min(best, context.LoadCost.LoadMs(runner, hint));
                }
            }

            foreach (var holder in context.Runners.Holding(hint))
            {
                if (holder.IsFree)
                {
                    best = Math.Min(best, context.LoadCost.LoadMs(holder, hint));
                }
            }

            return best;
        }

        private bool KeepsWarmWithRoom(RunnerState runner) => runner.Warm.Length > 0 && Candidates.HasRoom(runner, fleet.MeanModelBytes);
    }

    /// <summary>
    /// Figures of the whole fleet that a decision uses more than once, from one pass over the runners (draining ones left
    /// out): the queue's length, the runners' slots and mean inference time (so the queue's work per slot), their mean
    /// load time from storage, and the mean size of a model they hold.
    /// </summary>
    private readonly record struct Fleet(int Queued, double MeanInferenceMs, double Slots, double MeanStoreLoadMs, double MeanModelBytes)
    {
        /// <summary>The work of the queued requests per runner slot.</summary>
        public double QueuedMsPerSlot => Slots == 0 ? 0 : Queued * MeanInferenceMs / Slots;

        /// <summary>The queue holds at least <see cref="OverloadLoads"/> loads' worth of work per runner slot, at the mean load time from storage.</summary>
        public bool Overloaded => QueuedMsPerSlot >= OverloadLoads * MeanStoreLoadMs;

        public static Fleet Of(PlacementContext context)
        {
            double slots = 0, inferenceMs = 0, storeMs = 0, serving = 0;
            foreach (var runner in context.Runners.All)
            {
                if (!runner.Draining)
                {
                    slots += Math.Max(1, runner.Capacity);
                    inferenceMs += context.LoadCost.InferenceMs(runner);
                    storeMs += context.LoadCost.StoreLoadMs(runner);
                    serving++;
                }
            }

            return new Fleet(context.Queue.Count, serving == 0 ? 0 : inferenceMs / serving, slots,
                serving == 0 ? double.PositiveInfinity : storeMs / serving, Candidates.MeanModelBytes(context.Runners));
        }
    }
}
