namespace FalHints.Router.Placement;

/// <summary>
/// FalHints' default, fal's routing-hints contract made precise. A request never waits while a runner is free:
/// <list type="number">
/// <item>A free runner holding the request's hint (exact, ordinal) is preferred: the least loaded, then the one
/// that served this hint most recently. With several hints (most specific first) the earliest matched hint wins.</item>
/// <item>Otherwise any free runner, at once: the one whose load costs the other requests least
/// (<see cref="Candidates.LeastBlocking"/>: while it loads, what it holds cannot be served there, and the model it
/// evicts is lost; a runner holding nothing, or only copies of models other free runners hold, costs least). A
/// request without a hint goes to the free runner whose hints carry the most recent demand, the likeliest to hold its
/// model.</item>
/// <item>No free runner: the request waits in the router's queue. A runner that frees up takes the oldest waiting
/// request whose hint it holds; with none, the oldest waiting request.</item>
/// </list>
/// With nothing waiting, it copies the most demanded hints into memory a free runner does not use, in the background
/// (<see cref="SpareCopies"/>), never on the last free runner, so later requests find a free holder more often.
/// Starvation guarantee: once a request is the oldest of its priority class, at most
/// <see cref="PlacementContext.BypassLimit"/> younger requests of that class start before it; then it starts on the
/// next runner that frees up (a holder of its hint if one is free). Each forced start costs at most one load, so at
/// most one start in <c>limit + 1</c> is forced, however long an overload lasts.
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

        if (!context.HeadDue && Candidates.OldestHeld(context) is { } held)
        {
            return Record(held);
        }

        var runner = Candidates.BestFreeHolder(head, context.Runners)
            ?? (head.Request.Hint is null ? Candidates.LikeliestToHold(free, _demand) : Candidates.LeastBlocking(free, context.Runners, _demand)!);
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
