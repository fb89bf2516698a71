using FalHints.Client.Contracts;
using FalHints.Router.Hints;
using FalHints.Router.Placement;

namespace FalHints.Router.Queue;

/// <summary>The dispatcher's settings.</summary>
/// <param name="HeadBypassLimit">
/// How many younger requests of its class may start while a request is the head of the queue (the starvation bound of
/// FalHints' policies; see <see cref="PlacementContext.HeadDue"/>).
/// </param>
/// <param name="MaxQueueLength">Requests waiting at most; more are refused with <c>queue_full</c>.</param>
/// <param name="MaxAttempts">Runners tried per request when runners die.</param>
public sealed record DispatcherOptions(int HeadBypassLimit, int MaxQueueLength, int MaxAttempts)
{
    /// <summary>The head passed over at most 64 times, 10,000 queued, 10 attempts.</summary>
    public static DispatcherOptions Default { get; } = new(64, 10_000, 10);
}

/// <summary>A request to send to a runner.</summary>
public readonly record struct Dispatch(RequestTicket Ticket, string RunnerId, bool HintHit, int Attempt);

/// <summary>A request running on a runner.</summary>
public sealed record InFlightRequest(RequestTicket Ticket, string RunnerId, int Attempt, DateTimeOffset Since);

/// <summary>What became of a request whose runner was lost.</summary>
public readonly record struct LostRequest(RequestTicket Ticket, string RunnerId, int Attempts, bool Requeued);

/// <summary>
/// A router's whole decision state for one app, without Orleans: the hint index, the queue, the requests in flight.
/// The router grain feeds it events and acts on the dispatches it returns; the benchmark simulator drives the same
/// code in virtual time. Nothing here reads a clock: the time is passed in. Every choice (which request, which
/// runner, whether to wait) is the policy's; the dispatcher checks that each one is allowed and keeps the books.
/// </summary>
public sealed class Dispatcher(IPlacementPolicy policy, DispatcherOptions options)
{
    private readonly Dictionary<string, InFlightRequest> _inFlight = new(StringComparer.Ordinal);
    private readonly ReportedLoadCost _loadCost = new();

    // The head being counted, and how many younger requests of its class started while it was the head.
    private string? _headId;
    private int _headBypasses;

    // Attempts already made by queued requests that ran before (their runner died); others have made none.
    private readonly Dictionary<string, int> _priorAttempts = new(StringComparer.Ordinal);

    // Background loads under way, with how many of each (a runner may be asked twice by an operator).
    private readonly Dictionary<PrewarmChoice, int> _prewarming = [];

    /// <summary>The runners.</summary>
    public HintIndex Index { get; } = new();

    /// <summary>The waiting requests.</summary>
    public RequestQueue Queue { get; } = new();

    /// <summary>The policy placing requests.</summary>
    public IPlacementPolicy Policy => policy;

    /// <summary>Requests running now.</summary>
    public IReadOnlyCollection<InFlightRequest> InFlight => _inFlight.Values;

    /// <summary>Hinted requests placed on a runner that held (or was loading) one of their hints.</summary>
    public long Hits { get; private set; }

    /// <summary>Hinted requests placed elsewhere.</summary>
    public long Misses { get; private set; }

    /// <summary>Requests queued again because their runner was lost.</summary>
    public long Retries { get; private set; }

    /// <summary>Younger requests of its class started while the current head has been the head.</summary>
    public int HeadBypasses => Queue.Head is { } head && string.Equals(head.RequestId, _headId, StringComparison.Ordinal) ? _headBypasses : 0;

    /// <summary>When the policy asked, in the last <see cref="Pump"/>, to be called again although nothing else happens; null when it did not.</summary>
    public DateTimeOffset? NextWake { get; private set; }

    /// <summary>The background loads the policy asked for in the last <see cref="Pump"/>, already booked: send each, then call <see cref="PrewarmDone"/>.</summary>
    public IReadOnlyList<PrewarmChoice> Prewarms { get; private set; } = [];

    /// <summary>Whether the policy may ask for background loads (<see cref="IPlacementPolicy.Prewarm"/>); the router turns it off for an app that refuses them.</summary>
    public bool PrewarmsEnabled { get; set; } = true;

    /// <summary>Background loads started, by the policy or an operator.</summary>
    public long PrewarmsStarted { get; private set; }

    /// <summary>True when the request is queued or running.</summary>
    public bool Knows(string requestId) => Queue.Contains(requestId) || _inFlight.ContainsKey(requestId);

    /// <summary>The running request with this id, if any.</summary>
    public InFlightRequest? FindInFlight(string requestId) => _inFlight.GetValueOrDefault(requestId);

    /// <summary>
    /// Queues a request (<paramref name="priorAttempts"/>: runners it already ran on), or refuses it when the queue is
    /// full unless <paramref name="evenIfFull"/> (a request accepted before). Call <see cref="Pump"/> after.
    /// </summary>
    public RequestError? Enqueue(RequestTicket ticket, int priorAttempts = 0, bool evenIfFull = false)
    {
        if (Knows(ticket.RequestId))
        {
            return null;
        }

        if (Queue.Count >= options.MaxQueueLength && !evenIfFull)
        {
            return new RequestError(ErrorCodes.QueueFull, $"The queue of app '{ticket.Request.AppId}' is full ({options.MaxQueueLength} requests waiting).");
        }

        if (priorAttempts > 0)
        {
            // It started once already: its start deadline no longer applies.
            ticket = ticket with { Request = ticket.Request with { Options = ticket.Options with { StartTimeout = null } } };
            _priorAttempts[ticket.RequestId] = priorAttempts;
        }

        Queue.Add(ticket);

        return null;
    }

    /// <summary>
    /// Starts what the policy chooses to start now, one request at a time, until it chooses nothing more; then books the
    /// background loads it asks for (<see cref="Prewarms"/>). Each choice is checked: a request must wait in the head's
    /// priority class and its runner must admit it; a prewarm's runner must be free and not hold the hint yet.
    /// </summary>
    /// <exception cref="InvalidOperationException">The policy made a choice it may not make.</exception>
    public IReadOnlyList<Dispatch> Pump(DateTimeOffset now)
    {
        NextWake = null;
        Prewarms = [];
        var dispatches = new List<Dispatch>();
        var prewarm = PrewarmsEnabled && Index.Free.Count > 0;
        if (Queue.Count == 0 && !prewarm)
        {
            return dispatches;
        }

        _loadCost.Observe(Index);
        var context = new PlacementContext(now, Index, Queue, _loadCost, HeadBypasses, options.HeadBypassLimit, PrewarmsEnabled);
        List<PrewarmChoice>? prewarms = null;
        while (true)
        {
            while (Queue.Count > 0 && policy.Next(context) is { } placement)
            {
                var dispatch = Admit(placement);
                Start(dispatch, now);
                context.HeadBypasses = HeadBypasses;
                dispatches.Add(dispatch);
            }

            // A policy may hold a request back until a copy it asks for has been booked, then place it: ask again after any.
            var booked = false;
            while (PrewarmsEnabled && Index.Free.Count > 0 && policy.Prewarm(context) is { } choice)
            {
                if (Index.Find(choice.RunnerId) is not { IsFree: true } runner || runner.Holds(choice.Hint))
                {
                    throw new InvalidOperationException(
                        $"Policy {policy.Name} asked runner {choice.RunnerId} to load {choice.Hint} in the background, which it cannot do now (unknown, unconfirmed, draining, busy, or holding it already).");
                }

                BeginPrewarm(choice);
                (prewarms ??= []).Add(choice);
                booked = true;
            }

            if (!booked || Queue.Count == 0 || Index.Free.Count == 0)
            {
                break;
            }
        }

        Prewarms = prewarms ?? [];
        NextWake = context.Wake;
        return dispatches;
    }

    /// <summary>
    /// Books a background load of <paramref name="prewarm"/>'s hint on its runner: the runner counts one request in flight
    /// and holds the hint until <see cref="PrewarmDone"/>, when its report says what it holds. False when the runner is unknown.
    /// </summary>
    public bool BeginPrewarm(PrewarmChoice prewarm)
    {
        if (Index.Find(prewarm.RunnerId) is null)
        {
            return false;
        }

        _prewarming[prewarm] = _prewarming.GetValueOrDefault(prewarm) + 1;
        Index.MarkDispatched(prewarm.RunnerId, prewarm.Hint);
        PrewarmsStarted++;
        return true;
    }

    /// <summary>Ends a background load (done, failed or lost) and frees the runner's slot; false when none was under way.</summary>
    public bool PrewarmDone(PrewarmChoice prewarm)
    {
        if (!_prewarming.TryGetValue(prewarm, out var count))
        {
            return false;
        }

        if (count > 1)
        {
            _prewarming[prewarm] = count - 1;
        }
        else
        {
            _prewarming.Remove(prewarm);
        }

        Index.MarkCompleted(prewarm.RunnerId, prewarm.Hint);
        return true;
    }

    /// <summary>Frees the request's runner slot; false when the request was not in flight (already retried, or unknown).</summary>
    public bool Complete(string requestId, string runnerId)
    {
        if (!_inFlight.TryGetValue(requestId, out var running) || running.RunnerId != runnerId)
        {
            return false;
        }

        _inFlight.Remove(requestId);
        Index.MarkCompleted(runnerId, running.Ticket.Request.Hint);
        return true;
    }

    /// <summary>Removes a queued request; false when it is not queued.</summary>
    public bool CancelQueued(string requestId)
    {
        _priorAttempts.Remove(requestId);
        return Queue.Remove(requestId);
    }

    /// <summary>Removes and returns the queued requests whose start deadline has passed.</summary>
    public IReadOnlyList<RequestTicket> ExpireStartDeadlines(DateTimeOffset now) =>
        RemoveQueuedWhere(t => t.StartDeadline is { } deadline && deadline <= now);

    /// <summary>Removes and returns the queued requests that match (they will not be dispatched).</summary>
    public IReadOnlyList<RequestTicket> RemoveQueuedWhere(Func<RequestTicket, bool> match)
    {
        var removed = Queue.RemoveWhere(match);
        foreach (var ticket in removed)
        {
            _priorAttempts.Remove(ticket.RequestId);
        }

        return removed;
    }

    /// <summary>
    /// Forgets a runner and returns its running requests: each is queued again at its original place unless the
    /// caller opted out of retries or it has used all its attempts.
    /// </summary>
    public IReadOnlyList<LostRequest> RemoveRunner(string runnerId)
    {
        Index.Remove(runnerId);
        foreach (var prewarm in _prewarming.Keys.Where(p => string.Equals(p.RunnerId, runnerId, StringComparison.Ordinal)).ToList())
        {
            _prewarming.Remove(prewarm);
        }

        return [.. _inFlight.Values.Where(r => r.RunnerId == runnerId).ToList().Select(r => Lose(r.Ticket.RequestId)!.Value)];
    }

    /// <summary>
    /// Takes back one running request whose runner does not have it (it was lost with an earlier incarnation of the
    /// runner): queued again at its place unless it may not be retried. Null when the request is not in flight.
    /// </summary>
    public LostRequest? Lose(string requestId)
    {
        if (!_inFlight.Remove(requestId, out var running))
        {
            return null;
        }

        Index.MarkCompleted(running.RunnerId, running.Ticket.Request.Hint);
        var retry = !running.Ticket.Options.NoRetry && running.Attempt < options.MaxAttempts;
        if (retry)
        {
            // A request that started once is past its start deadline's purpose.
            Queue.Add(running.Ticket with { Request = running.Ticket.Request with { Options = running.Ticket.Options with { StartTimeout = null } } });
            _priorAttempts[running.Ticket.RequestId] = running.Attempt;
            Retries++;
        }

        return new LostRequest(running.Ticket, running.RunnerId, running.Attempt, retry);
    }

    /// <summary>Takes on a request that a previous activation dispatched (after a router restart).</summary>
    public void Adopt(RequestTicket ticket, string runnerId, int attempt, DateTimeOffset now)
    {
        if (Knows(ticket.RequestId))
        {
            return;
        }

        _inFlight.Add(ticket.RequestId, new InFlightRequest(ticket, runnerId, attempt, now));
        Index.MarkAdopted(runnerId, ticket.Request.Hint, now);
    }

    private Dispatch Admit(PlacementChoice placement)
    {
        var ticket = placement.Ticket;
        var head = Queue.Head!;
        if (!Queue.Contains(ticket.RequestId) || ticket.Options.Priority != head.Options.Priority)
        {
            throw new InvalidOperationException(
                $"Policy {policy.Name} chose request {ticket.RequestId}, which is not waiting in the head's priority class ({head.Options.Priority}).");
        }

        if (Index.Find(placement.RunnerId) is not { } runner || !runner.Confirmed || runner.Draining || runner.InFlight >= policy.Admits(runner))
        {
            throw new InvalidOperationException(
                $"Policy {policy.Name} chose runner {placement.RunnerId} for request {ticket.RequestId}, which cannot take it now (unknown, unconfirmed, draining or full).");
        }

        var hit = ticket.Request.Hint is not null && RequestHints.Of(ticket).Any(runner.Holds);
        return new Dispatch(ticket, runner.RunnerId, hit, NextAttempt(ticket));
    }

    private int NextAttempt(RequestTicket ticket) => _priorAttempts.GetValueOrDefault(ticket.RequestId) + 1;

    private void Start(Dispatch dispatch, DateTimeOffset now)
    {
        var head = Queue.Head!;
        if (!string.Equals(head.RequestId, _headId, StringComparison.Ordinal))
        {
            _headId = head.RequestId;
            _headBypasses = 0;
        }

        if (!string.Equals(dispatch.Ticket.RequestId, head.RequestId, StringComparison.Ordinal))
        {
            _headBypasses++;
        }

        Queue.Remove(dispatch.Ticket.RequestId);
        _priorAttempts.Remove(dispatch.Ticket.RequestId);
        _inFlight.Add(dispatch.Ticket.RequestId, new InFlightRequest(dispatch.Ticket, dispatch.RunnerId, dispatch.Attempt, now));
        Index.MarkDispatched(dispatch.RunnerId, dispatch.Ticket.Request.Hint);
        if (dispatch.Ticket.Request.Hint is not null)
        {
            _ = dispatch.HintHit ? Hits++ : Misses++;
        }
    }
}
