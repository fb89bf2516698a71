using System.Collections.Immutable;
using FalHints.Client.Contracts;

namespace FalHints.Router.Hints;

/// <summary>Read access to a router's runners, as placement policies see them.</summary>
public interface IRunnerIndex
{
    /// <summary>Every runner known.</summary>
    IReadOnlyCollection<RunnerState> All { get; }

    /// <summary>The runners that can take a request now.</summary>
    IReadOnlyCollection<RunnerState> Free { get; }

    /// <summary>The runners whose hints or loading list contain <paramref name="hint"/> exactly, or that were sent a request for it that has not come back (busy or not).</summary>
    IReadOnlyCollection<RunnerState> Holding(string hint);
}

/// <summary>
/// The router's index of its app's runners, with a reverse index from hint to holders. Events are applied only
/// when their sequence is newer than the last applied for that runner, so duplicated or reordered events are
/// harmless; each replaces the runner's <see cref="RunnerReport"/> whole. Dispatches are recorded at once, beside the
/// report and never in it (the runner is about to hold the hint), so bursts do not all miss.
/// </summary>
public sealed class HintIndex : IRunnerIndex
{
    private static readonly IReadOnlyCollection<RunnerState> Nobody = [];
    private readonly Dictionary<string, RunnerState> _runners = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HashSet<RunnerState>> _holders = new(StringComparer.Ordinal);
    private readonly HashSet<RunnerState> _free = [];
    private long _tick;

    /// <summary>Runners known.</summary>
    public int Count => _runners.Count;

    /// <summary>What the app told routers about itself in its latest event, or, before any, in its declaration (<see cref="Declare"/>).</summary>
    public AppRouting? Routing { get; private set; }

    /// <inheritdoc />
    public IReadOnlyCollection<RunnerState> All => _runners.Values;

    /// <inheritdoc />
    public IReadOnlyCollection<RunnerState> Free => _free;

    /// <inheritdoc />
    public IReadOnlyCollection<RunnerState> Holding(string hint) => _holders.TryGetValue(hint, out var holders) ? holders : Nobody;

    /// <summary>The runner with this id, if known.</summary>
    public RunnerState? Find(string runnerId) => _runners.GetValueOrDefault(runnerId);

    /// <summary>
    /// Applies a runner's event received at <paramref name="now"/>; false when it is not newer than what the index holds.
    /// <paramref name="current"/> says the event is known to be current (a direct reply from the runner); a runner first
    /// seen through an event that is not takes no requests until it is confirmed by one that is.
    /// </summary>
    public bool Apply(HintsEvent hints, DateTimeOffset now, bool current = true)
    {
        if (!_runners.TryGetValue(hints.RunnerId, out var runner))
        {
            runner = new RunnerState(RunnerReport.Unheard(hints.RunnerId));
            _runners.Add(hints.RunnerId, runner);
        }
        else if (hints.Sequence <= runner.Sequence)
        {
            if (current && !runner.Confirmed)
            {
                // The index already holds this state or a newer one.
                runner.SetConfirmed(true);
                Refresh(runner);
            }

            return false;
        }

        Unlink(runner);
        runner.Replace(RunnerReport.From(hints));
        runner.Seen(now);
        runner.SetConfirmed(runner.Confirmed || current);
        Link(runner);
        Routing = hints.Routing ?? Routing;
        return true;
    }

    /// <summary>What the app declared (hint field, input limits) before any runner reported; runners' events replace it.</summary>
    public void Declare(AppRouting routing) => Routing ??= routing;

    /// <summary>
    /// Records a request running on a runner the index has not heard from yet (a router that restarted learns of it
    /// from the request before the runner's first heartbeat): an unconfirmed entry that takes no work but counts it.
    /// </summary>
    public void MarkAdopted(string runnerId, string? hint, DateTimeOffset now)
    {
        if (!_runners.ContainsKey(runnerId))
        {
            var runner = new RunnerState(RunnerReport.Unheard(runnerId));
            runner.Seen(now);
            _runners.Add(runnerId, runner);
        }

        MarkDispatched(runnerId, hint);
    }

    /// <summary>Records a dispatch: one more in flight, and the runner is about to hold <paramref name="hint"/>.</summary>
    public void MarkDispatched(string runnerId, string? hint)
    {
        if (!_runners.TryGetValue(runnerId, out var runner))
        {
            return;
        }

        if (runner.AddSent(hint, ++_tick))
        {
            HoldersOf(hint!).Add(runner);
        }

        Refresh(runner);
    }

    /// <summary>Records that a dispatched request for <paramref name="hint"/> came back.</summary>
    public void MarkCompleted(string runnerId, string? hint)
    {
        if (_runners.TryGetValue(runnerId, out var runner) && runner.Dispatched > 0)
        {
            if (runner.RemoveSent(hint))
            {
                DropHolder(hint!, runner);
            }

            Refresh(runner);
        }
    }

    /// <summary>
    /// Places nothing more on the runners of <paramref name="silo"/> until each is confirmed again by a direct reply
    /// (a call to one of them failed: the silo may be gone). Returns the runners now awaiting confirmation.
    /// </summary>
    public IReadOnlyList<string> Suspect(string silo)
    {
        var suspects = _runners.Values.Where(r => r.Confirmed && string.Equals(r.Silo, silo, StringComparison.Ordinal)).ToList();
        foreach (var runner in suspects)
        {
            runner.SetConfirmed(false);
            Refresh(runner);
        }

        return [.. suspects.Select(r => r.RunnerId)];
    }

    /// <summary>Forgets a runner (it died or went silent); its next event adds it again.</summary>
    public bool Remove(string runnerId)
    {
        if (!_runners.Remove(runnerId, out var runner))
        {
            return false;
        }

        Unlink(runner);
        return true;
    }

    /// <summary>The runners as operators see them, ordered by id.</summary>
    public ImmutableArray<RunnerSnapshot> Snapshot() =>
        [.. _runners.Values.OrderBy(r => r.RunnerId, StringComparer.Ordinal)
            .Select(r => new RunnerSnapshot(r.RunnerId, r.Hints, r.InFlight, r.Capacity, r.Sequence, r.Loading, r.Cache, r.LastSeen, r.Silo, r.Warm))];

    private void Link(RunnerState runner)
    {
        foreach (var hint in runner.AllHeld)
        {
            HoldersOf(hint).Add(runner);
        }

        Refresh(runner);
    }

    private HashSet<RunnerState> HoldersOf(string hint)
    {
        if (!_holders.TryGetValue(hint, out var holders))
        {
            holders = [];
            _holders.Add(hint, holders);
        }

        return holders;
    }

    private void Unlink(RunnerState runner)
    {
        foreach (var hint in runner.AllHeld)
        {
            DropHolder(hint, runner);
        }

        _free.Remove(runner);
    }

    private void DropHolder(string hint, RunnerState runner)
    {
        if (_holders.TryGetValue(hint, out var holders) && holders.Remove(runner) && holders.Count == 0)
        {
            _holders.Remove(hint);
        }
    }

    private void Refresh(RunnerState runner)
    {
        if (runner.IsFree && _runners.ContainsKey(runner.RunnerId))
        {
            _free.Add(runner);
        }
        else
        {
            _free.Remove(runner);
        }
    }
}
