using System.Collections.Immutable;
using FalHints.Client.Contracts;

namespace FalHints.Router.Hints;

/// <summary>
/// What a router knows of one runner. Reported state (hints, loading, capacity, draining, cache) comes from the
/// runner's events; in-flight counts and use stamps are the router's own, since it alone dispatches its app's requests.
/// </summary>
public sealed class RunnerState
{
    private readonly Dictionary<string, long> _hintUsed = new(StringComparer.Ordinal);
    private readonly HashSet<string> _held = new(StringComparer.Ordinal);
    private ImmutableArray<string> _hints = [];
    private ImmutableArray<string> _loading = [];

    internal RunnerState(string runnerId, string silo)
    {
        RunnerId = runnerId;
        Silo = silo;
    }

    /// <summary>The runner, <c>{silo}/{device}</c>.</summary>
    public string RunnerId { get; }

    /// <summary>The silo it is pinned to.</summary>
    public string Silo { get; }

    /// <summary>The app's hints on this runner, in the app's order.</summary>
    public ImmutableArray<string> Hints
    {
        get => _hints;
        internal set
        {
            _hints = value;
            RebuildHeld();
        }
    }

    /// <summary>What the runner is loading now.</summary>
    public ImmutableArray<string> Loading
    {
        get => _loading;
        internal set
        {
            _loading = value;
            RebuildHeld();
        }
    }

    /// <summary>What the runner keeps in host memory (its host tier), as last reported; not hints, but cheap to load.</summary>
    public ImmutableArray<string> Warm { get; internal set; } = [];

    /// <summary>
    /// Requests running there: the more of what the router dispatched and what the runner last reported, so a router
    /// that restarted does not overload runners still busy with requests it has not heard of yet.
    /// </summary>
    public int InFlight => Math.Max(Dispatched, Reported);

    /// <summary>Requests this router dispatched there that have not come back.</summary>
    public int Dispatched { get; internal set; }

    /// <summary>Requests the runner said it was running in its last applied event.</summary>
    public int Reported { get; internal set; }

    /// <summary>Requests it takes at once.</summary>
    public int Capacity { get; internal set; }

    /// <summary>True once the runner announced it is stopping.</summary>
    public bool Draining { get; internal set; }

    /// <summary>The last applied event's sequence.</summary>
    public long Sequence { get; internal set; } = long.MinValue;

    /// <summary>When the router last heard from the runner.</summary>
    public DateTimeOffset LastSeen { get; internal set; }

    /// <summary>The dispatch tick of the runner's last request (0: never used).</summary>
    public long LastUsed { get; internal set; }

    /// <summary>The runner's pipeline cache as last reported.</summary>
    public CacheUsage Cache { get; internal set; } = CacheUsage.None;

    /// <summary>Mean time of the app's requests on the runner as last reported, in milliseconds.</summary>
    public double MeanInferenceMs { get; internal set; }

    /// <summary>
    /// True once the router has had state it knows to be current, a direct reply from the runner; events after that
    /// are newer still. The first event a router sees of a runner may have waited in the stream for a while.
    /// </summary>
    public bool Confirmed { get; internal set; }

    /// <summary>True when the runner can take one more request now.</summary>
    public bool IsFree => Confirmed && !Draining && InFlight < Capacity;

    /// <summary>True when the runner holds nothing and is loading nothing: it matches any request.</summary>
    public bool IsEmpty => Hints.IsEmpty && Loading.IsEmpty;

    /// <summary>Exact, ordinal, case-sensitive match against the runner's hints and what it is loading.</summary>
    public bool Holds(string hint) => _held.Contains(hint);

    /// <summary>The dispatch tick of the last request for <paramref name="hint"/> sent here (0: never).</summary>
    public long HintLastUsed(string hint) => _hintUsed.GetValueOrDefault(hint);

    /// <summary>Adds one hint to the loading list (a dispatch the runner is about to load for).</summary>
    internal void AddLoading(string hint)
    {
        _loading = _loading.Add(hint);
        _held.Add(hint);
    }

    private void RebuildHeld()
    {
        _held.Clear();
        _held.UnionWith(_hints);
        _held.UnionWith(_loading);
    }

    internal void MarkUsed(string? hint, long tick)
    {
        LastUsed = tick;
        if (hint is not null)
        {
            _hintUsed[hint] = tick;
        }
    }

    internal void ForgetUnheld()
    {
        foreach (var hint in _hintUsed.Keys.Where(h => !Holds(h)).ToList())
        {
            _hintUsed.Remove(hint);
        }
    }
}
