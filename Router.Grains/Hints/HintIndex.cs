using System.Collections.Immutable;
using FalHints.Client.Contracts;
using FalHints.Router.Placement;

namespace FalHints.Router.Hints;

/// <summary>
/// The router's index of its app's runners. Reported state (hints, capacity, draining) comes from runner
/// events and is applied only when an event's sequence is newer than the last applied for that runner, so
/// duplicated or reordered events are harmless. In-flight counts are the router's own, since it alone
/// dispatches its app's requests.
/// </summary>
public sealed class HintIndex
{
    private readonly Dictionary<string, Entry> _runners = new(StringComparer.Ordinal);

    /// <summary>Runners known.</summary>
    public int Count => _runners.Count;

    /// <summary>Applies a runner's event; false when it is not newer than what the index holds.</summary>
    public bool Apply(HintsEvent hints)
    {
        if (_runners.TryGetValue(hints.RunnerId, out var entry))
        {
            if (hints.Sequence <= entry.Sequence)
            {
                return false;
            }
        }
        else
        {
            entry = new Entry(hints.RunnerId);
            _runners.Add(hints.RunnerId, entry);
        }

        entry.Sequence = hints.Sequence;
        entry.Hints = hints.Hints.IsDefault ? [] : hints.Hints;
        entry.Loading = hints.Loading.IsDefault ? [] : hints.Loading;
        entry.Cache = hints.Cache ?? CacheUsage.None;
        entry.Capacity = hints.Capacity;
        entry.Draining = hints.Kind == HintsEventKind.Draining;
        return true;
    }

    /// <summary>Records a dispatch: one more in flight, and the runner is about to hold <paramref name="hint"/>.</summary>
    public void MarkDispatched(string runnerId, string? hint)
    {
        if (!_runners.TryGetValue(runnerId, out var entry))
        {
            return;
        }

        entry.InFlight++;
        if (hint is not null && !entry.Hints.Contains(hint, StringComparer.Ordinal))
        {
            entry.Hints = entry.Hints.Add(hint);
        }
    }

    /// <summary>Records that a dispatched request came back.</summary>
    public void MarkCompleted(string runnerId)
    {
        if (_runners.TryGetValue(runnerId, out var entry) && entry.InFlight > 0)
        {
            entry.InFlight--;
        }
    }

    /// <summary>Forgets a runner (it failed); its next event adds it again.</summary>
    public void Remove(string runnerId) => _runners.Remove(runnerId);

    /// <summary>The runners as placement sees them.</summary>
    public IReadOnlyCollection<RunnerView> Views() =>
        [.. _runners.Values.Select(e => new RunnerView(e.RunnerId, e.Hints, e.InFlight, e.Capacity, e.Draining) { Loading = e.Loading })];

    /// <summary>The runners as operators see them, ordered by id.</summary>
    public ImmutableArray<RunnerSnapshot> Snapshot() =>
        [.. _runners.Values.OrderBy(e => e.RunnerId, StringComparer.Ordinal)
            .Select(e => new RunnerSnapshot(e.RunnerId, e.Hints, e.InFlight, e.Capacity, e.Sequence, e.Loading, e.Cache))];

    private sealed class Entry(string runnerId)
    {
        public string RunnerId { get; } = runnerId;

        public ImmutableArray<string> Hints { get; set; } = [];

        public ImmutableArray<string> Loading { get; set; } = [];

        public CacheUsage Cache { get; set; } = CacheUsage.None;

        public int Capacity { get; set; }

        public long Sequence { get; set; } = long.MinValue;

        public bool Draining { get; set; }

        public int InFlight { get; set; }
    }
}
