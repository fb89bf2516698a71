namespace FalHints.Router.Placement;

/// <summary>
/// FalHints' default, fal's routing-hints contract made precise. A request never waits while a runner is free:
/// <list type="number">
/// <item>A free runner holding the request's hint (exact, ordinal) is preferred: the least loaded, then the one
/// that served this hint most recently. With several hints (most specific first) the earliest matched hint wins.</item>
/// <item>Otherwise any free runner, at once: the one whose repurposing costs least (holding fewest hints, none
/// first, then least recently used).</item>
/// <item>No free runner: the request waits in the router's queue. A runner that frees up takes the oldest waiting
/// request whose hint it holds; with none, the oldest waiting request.</item>
/// </list>
/// Starvation guarantee: once a request is the oldest of its priority class, at most
/// <see cref="PlacementContext.BypassLimit"/> younger requests of that class start before it; then it starts on the
/// next runner that frees up (a holder of its hint if one is free). Each forced start costs at most one load, so at
/// most one start in <c>limit + 1</c> is forced, however long an overload lasts.
/// </summary>
public sealed class HintAffinityPolicy : IPlacementPolicy
{
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
            return held;
        }

        var runner = Candidates.BestFreeHolder(head, context.Runners) ?? Candidates.CheapestToRepurpose(free)!;
        return PlacementChoice.Of(head, runner);
    }
}
