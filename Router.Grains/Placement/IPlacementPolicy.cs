namespace FalHints.Router.Placement;

/// <summary>
/// Chooses a runner for a request. Pure and synchronous: no clock, no randomness, no Orleans types, so the
/// router grain and offline simulations run the same code.
/// </summary>
public interface IPlacementPolicy
{
    /// <summary>The runner for a request with <paramref name="hint"/> (null: no hint), or null when no runner is free.</summary>
    PlacementDecision? Choose(string? hint, IReadOnlyCollection<RunnerView> runners);
}
