namespace FalHints.Router.Placement;

/// <summary>
/// FalHints' default, fal's routing-hints contract made precise. A request never waits while a runner is free:
/// <list type="number">
/// <item>A free runner holding the request's hint (exact, ordinal) is preferred: the least loaded, then the one
/// that served this hint most recently. With several hints (most specific first) the earliest matched hint wins.</item>
/// <item>Otherwise any free runner, at once: the one whose load costs the other requests least
/// (<see cref="Candidates.LeastBlocking"/>: while it loads, what it holds cannot be served there, and the model it
/// evicts is lost; a runner holding nothing, or only copies of models other free runners hold, costs least; a runner
/// that keeps the model in host memory loads it in a promotion's time, and what it evicts stays in host memory). A
/// request without a hint goes to the free runner whose hints carry the most recent demand, the likeliest to hold its
/// model.</item>
/// <item>No free runner: the request waits in the router's queue, a lower priority class behind every request of a
/// higher one. When runners are free, the oldest waiting request of the head's class that a free runner holds a hint
/// for starts first, on its best free holder (as in 1); with none, the oldest waiting request, on a runner chosen as
/// in 2.</item>
/// </list>
/// With nothing waiting, it copies the most demanded hints into memory a free runner does not use, in the background
/// (<see cref="SpareCopies"/>), never on the last free runner, so later requests find a free holder more often.
/// Starvation guarantee: once a request is the oldest of its priority class and
/// <see cref="PlacementContext.BypassLimit"/> younger requests of that class have started before it, it starts on the
/// next free runner holding its hint, and no such runner takes another request first; if no runner holds its hint, it
/// starts on the next runner that frees up. While its holders are all busy, free runners go on serving the waiting
/// requests they hold, and it starts on a free runner (a load) only when no waiting request is held by one. So it waits,
/// past the limit, at most for one request (or load) under way on a holder of its hint. Only a request whose model
/// nobody holds is put first onto a runner that must load it, so forced loads stay few however long an overload lasts
/// (the earlier rule, the next free runner whatever it held, turned a load under way on a holder into a cascade of
/// loads elsewhere).
/// </summary>
public sealed class HintAffinityPolicy : IPlacementPolicy
{
    private readonly HintDemand _demand = new();
    private readonly SpareCopies _spare;

    /// <summary>A policy with no demand seen yet.</summary>
    public HintAffinityPolicy() => _spare = new SpareCopies(_demand);

    /// <inheritdoc />
    public string Name => PlacementPolicies.HintAffinity;

    /// <inheritdoc />
    public PlacementChoice? Next(PlacementContext context)
    {
        var free = context.Runners.Free;
        if (free.Count == 0 || context.Queue.Head is not { } head)
        {
            return null;
        }

        // A head that is due starts first on a free holder of its hint; while its holders are all busy it waits for the
        // first of them, and only a head whose hint nobody holds takes the next free runner at once.
        var due = context.HeadDue && (Candidates.BestFreeHolder(head, context.Runners) is not null || !Candidates.HasHolder(head, context.Runners));
        if (!due && Candidates.OldestHeld(context) is { } held)
        {
            return Record(held);
        }

        var runner = Candidates.BestFreeHolder(head, context.Runners)
            ?? (head.Request.Hint is null ? Candidates.LikeliestToHold(free, _demand) : Candidates.LeastBlocking(free, context.Runners, _demand, head.Request.Hint, context.LoadCost)!);
        return Record(PlacementChoice.Of(head, runner));
    }

    /// <inheritdoc />
    public PrewarmChoice? Prewarm(PlacementContext context) => context.Queue.Count == 0 ? _spare.Next(context) : null;

    private PlacementChoice Record(PlacementChoice choice)
    {
        _demand.Record(choice.Ticket.Request.Hint);
        return choice;
    }
}
