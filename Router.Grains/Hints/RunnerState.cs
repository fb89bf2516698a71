using System.Collections.Immutable;
using FalHints.Client.Contracts;

namespace FalHints.Router.Hints;

/// <summary>
/// What a router knows of one runner. Reported state (hints, loading, capacity, draining, cache) comes from the
/// runner's events and is replaced whole; in-flight counts, the hints of requests sent there and use stamps are the
/// router's own, since it alone dispatches its app's requests, and live beside the report.
/// </summary>
public sealed class RunnerState
{
    private readonly Dictionary<string, long> _hintUsed = new(StringComparer.Ordinal);
    private readonly HashSet<string> _held = new(StringComparer.Ordinal);

    // Hints of requests the router sent here that have not come back: the runner holds or is loading them.
    private readonly Dictionary<string, int> _sent = new(StringComparer.Ordinal);
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

    /// <summary>
    /// Exact, ordinal, case-sensitive match against the runner's hints, what it reported loading, and the hints of
    /// requests the router sent it that have not come back (it is about to hold those).
    /// </summary>
    public bool Holds(string hint) => _held.Contains(hint) || _sent.ContainsKey(hint);

    /// <summary>True when the runner's own last report lists <paramref name="hint"/> among its hints or loading (not counting what the router sent since).</summary>
    public bool Reports(string hint) => _held.Contains(hint);

    /// <summary>Distinct hints the runner holds or is about to hold: its report and what the router sent since.</summary>
    public int HeldCount => _held.Count + _sent.Keys.Count(h => !_held.Contains(h));

    /// <summary>Requests for <paramref name="hint"/> the router sent here that have not come back.</summary>
    public int SentCount(string hint) => _sent.GetValueOrDefault(hint);

    /// <summary>The hints of requests sent here that have not come back and that the runner has not reported yet.</summary>
    public IEnumerable<string> Sent => _sent.Keys.Where(h => !_held.Contains(h));

    /// <summary>The dispatch tick of the last request for <paramref name="hint"/> sent here (0: never).</summary>
    public long HintLastUsed(string hint) => _hintUsed.GetValueOrDefault(hint);

    /// <summary>Records a request for <paramref name="hint"/> sent here; true when the runner did not hold it before.</summary>
    internal bool AddSent(string hint)
    {
        var before = Holds(hint);
        _sent[hint] = _sent.GetValueOrDefault(hint) + 1;
        return !before;
    }

    /// <summary>Records that a request for <paramref name="hint"/> came back; true when the runner no longer holds it.</summary>
    internal bool RemoveSent(string hint)
    {
        if (!_sent.TryGetValue(hint, out var count))
        {
            return false;
        }

        if (count > 1)
        {
            _sent[hint] = count - 1;
            return false;
        }

        _sent.Remove(hint);
        return !Holds(hint);
    }

    /// <summary>Every hint the runner is known to hold: reported and sent.</summary>
    internal IEnumerable<string> AllHeld => _held.Concat(Sent);

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
