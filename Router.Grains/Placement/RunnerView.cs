using System.Collections.Immutable;

namespace FalHints.Router.Placement;

/// <summary>What placement knows of one runner: its hints (in the app's order), what it is loading, and its load.</summary>
public sealed record RunnerView(string RunnerId, ImmutableArray<string> Hints, int InFlight, int Capacity, bool Draining)
{
    /// <summary>Pipelines the runner is loading now; a request for one of them is as good as a hit.</summary>
    public ImmutableArray<string> Loading { get; init; } = [];

    /// <summary>True when the runner can take one more request now.</summary>
    public bool IsFree => !Draining && InFlight < Capacity;

    /// <summary>Exact, ordinal, case-sensitive match of <paramref name="hint"/> against the runner's hints and loading list.</summary>
    public bool Holds(string hint) => Hints.Contains(hint, StringComparer.Ordinal) || Loading.Contains(hint, StringComparer.Ordinal);
}

/// <summary>Where to send a request, and whether the runner held the request's hint.</summary>
public readonly record struct PlacementDecision(string RunnerId, bool HintHit);
