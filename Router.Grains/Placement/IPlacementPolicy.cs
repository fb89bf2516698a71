using FalHints.Client.Contracts;
using FalHints.Router.Hints;

namespace FalHints.Router.Placement;

/// <summary>What a policy decided for one request.</summary>
public enum PlacementKind
{
    /// <summary>No runner is free: the request stays queued.</summary>
    None = 0,

    /// <summary>Send the request to <see cref="PlacementDecision.RunnerId"/>.</summary>
    Place = 1,

    /// <summary>A runner is free, but waiting for a busy one is expected to be faster (cost-aware placement only).</summary>
    Wait = 2,
}

/// <summary>Where to send a request, and whether the runner held one of the request's hints.</summary>
public readonly record struct PlacementDecision(PlacementKind Kind, string? RunnerId, bool HintHit)
{
    /// <summary>No runner is free.</summary>
    public static PlacementDecision None { get; } = new(PlacementKind.None, null, false);

    /// <summary>Keep the request queued for now although a runner is free.</summary>
    public static PlacementDecision Wait { get; } = new(PlacementKind.Wait, null, false);

    /// <summary>Send the request to <paramref name="runner"/>.</summary>
    public static PlacementDecision Place(RunnerState runner, bool hintHit) => new(PlacementKind.Place, runner.RunnerId, hintHit);
}

/// <summary>
/// Chooses a runner for a request. Pure and synchronous: no clock reads (the time is passed in), randomness
/// injected, no Orleans types, so the router grain and the benchmark simulator run the same code.
/// </summary>
public interface IPlacementPolicy
{
    /// <summary>The name the policy is configured by.</summary>
    string Name { get; }

    /// <summary>
    /// True when the policy prefers runners holding the request's hints; the dispatcher then lets a free runner
    /// take the oldest queued request it holds before the head of the queue (within the starvation bound).
    /// </summary>
    bool FreedRunnerTakesHeldRequest { get; }

    /// <summary>The decision for <paramref name="request"/> given the runners; <see cref="PlacementDecision.None"/> when no runner is free.</summary>
    PlacementDecision Choose(RequestTicket request, IRunnerIndex runners, DateTimeOffset now);
}
