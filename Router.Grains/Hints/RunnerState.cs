using System.Collections.Immutable;
using FalHints.Client.Contracts;

namespace FalHints.Router.Hints;

/// <summary>
/// What a router knows of one runner: the runner's last <see cref="Report"/>, replaced whole by each newer event, and
/// beside it what the router owns, since it alone dispatches its app's requests: the requests it sent there, the hints
/// of those, use stamps, when it last heard from the runner and whether that state is confirmed. The reported
/// properties below read the report; only the router's own change between reports, and only through the index.
/// </summary>
public sealed class RunnerState
{
    private readonly Dictionary<string, long> _hintUsed = new(StringComparer.Ordinal);
    private readonly HashSet<string> _held = new(StringComparer.Ordinal);

    // Hints of requests the router sent here that have not come back: the runner holds or is loading them.
    private readonly Dictionary<string, int> _sent = new(StringComparer.Ordinal);

    internal RunnerState(RunnerReport report) => Replace(report);

    /// <summary>What the runner last reported.</summary>
    public RunnerReport Report { get; private set; } = null!;

    /// <summary>The runner, <c>{silo}/{device}</c>.</summary>
    public string RunnerId => Report.RunnerId;

    /// <summary>The silo it is pinned to.</summary>
    public string Silo => Report.Silo;

    /// <summary>The app's hints on this runner, in the app's order, as reported.</summary>
    public ImmutableArray<string> Hints => Report.Hints;

    /// <summary>What the runner is loading now, as reported.</summary>
    public ImmutableArray<string> Loading => Report.Loading;

    /// <summary>What the runner keeps in host memory (its host tier), as reported; not hints, but cheap to load.</summary>
    public ImmutableArray<string> Warm => Report.Warm;

    /// <summary>Requests it takes at once, as reported.</summary>
    public int Capacity => Report.Capacity;

    /// <summary>True once the runner announced it is stopping.</summary>
    public bool Draining => Report.Draining;

    /// <summary>The last applied event's sequence.</summary>
    public long Sequence => Report.Sequence;

    /// <summary>The runner's pipeline cache as last reported.</summary>
    public CacheUsage Cache => Report.Cache;

    /// <summary>Mean time of the app's requests on the runner as last reported, in milliseconds.</summary>
    public double MeanInferenceMs => Report.MeanInferenceMs;

    /// <summary>Requests the runner said it was running in its last applied event.</summary>
    public int Reported => Report.InFlight;

    /// <summary>
    /// Requests running there: the more of what the router dispatched and what the runner last reported, so a router
    /// that restarted does not overload runners still busy with requests it has not heard of yet.
    /// </summary>
    public int InFlight => Math.Max(Dispatched, Reported);

    /// <summary>Requests this router dispatched there that have not come back (the router's own count).</summary>
    public int Dispatched { get; private set; }

    /// <summary>When the router last heard from the runner (the router's own clock, not the event's).</summary>
    public DateTimeOffset LastSeen { get; private set; }

    /// <summary>The dispatch tick of the runner's last request (0: never used).</summary>
    public long LastUsed { get; private set; }

    /// <summary>
    /// True once the router has had state it knows to be current, a direct reply from the runner; events after that
    /// are newer still. The first event a router sees of a runner may have waited in the stream for a while.
    /// </summary>
    public bool Confirmed { get; private set; }

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

    /// <summary>Every hint the runner is known to hold: reported and sent.</summary>
    internal IEnumerable<string> AllHeld => _held.Concat(Sent);

    /// <summary>Replaces the report whole; use stamps of hints the runner no longer holds are forgotten.</summary>
    internal void Replace(RunnerReport report)
    {
        Report = report;
        _held.Clear();
        _held.UnionWith(report.Hints);
        _held.UnionWith(report.Loading);
        foreach (var hint in _hintUsed.Keys.Where(h => !Holds(h)).ToList())
        {
            _hintUsed.Remove(hint);
        }
    }

    /// <summary>The router heard from the runner at <paramref name="now"/>.</summary>
    internal void Seen(DateTimeOffset now) => LastSeen = now;

    /// <summary>Whether the router takes the runner's state as current (a direct reply) or awaits a confirmation.</summary>
    internal void SetConfirmed(bool confirmed) => Confirmed = confirmed;

    /// <summary>Records a request for <paramref name="hint"/> sent here at dispatch tick <paramref name="tick"/>; true when the runner did not hold the hint before.</summary>
    internal bool AddSent(string? hint, long tick)
    {
        Dispatched++;
        LastUsed = tick;
        if (hint is null)
        {
            return false;
        }

        _hintUsed[hint] = tick;
        var before = Holds(hint);
        _sent[hint] = _sent.GetValueOrDefault(hint) + 1;
        return !before;
    }

    /// <summary>Records that a request for <paramref name="hint"/> came back (one was out: <see cref="Dispatched"/> is positive); true when the runner no longer holds the hint.</summary>
    internal bool RemoveSent(string? hint)
    {
        Dispatched--;
        if (hint is null || !_sent.TryGetValue(hint, out var count))
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
}
