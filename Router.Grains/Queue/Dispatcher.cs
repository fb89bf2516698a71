using FalHints.Client.Contracts;
using FalHints.Router.Hints;
using FalHints.Router.Placement;

namespace FalHints.Router.Queue;

/// <summary>The dispatcher's settings.</summary>
/// <param name="StarvationBound">How long the head of the queue may be passed over by requests whose hints a free runner holds.</param>
/// <param name="MaxQueueLength">Requests waiting at most; more are refused with <c>queue_full</c>.</param>
/// <param name="MaxAttempts">Runners tried per request when runners die.</param>
/// <param name="ScanDepth">How deep into the queue a policy that holds a request back looks for one to place instead.</param>
public sealed record DispatcherOptions(TimeSpan StarvationBound, int MaxQueueLength, int MaxAttempts, int ScanDepth)
{
    /// <summary>10 s starvation bound, 10,000 queued, 10 attempts, scan 256 deep.</summary>
    public static DispatcherOptions Default { get; } = new(TimeSpan.FromSeconds(10), 10_000, 10, 256);
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
/// code in virtual time. Nothing here reads a clock: the time is passed in.
/// </summary>
public sealed class Dispatcher(IPlacementPolicy policy, DispatcherOptions options)
{
    private readonly Dictionary<string, InFlightRequest> _inFlight = new(StringComparer.Ordinal);

    // Attempts already made by queued requests that ran before (their runner died); others have made none.
    private readonly Dictionary<string, int> _priorAttempts = new(StringComparer.Ordinal);

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
    /// Places waiting requests while runners are free. A free runner first takes the oldest request of the head's
    /// priority class whose hints it holds, unless the head has waited longer than the starvation bound; otherwise
    /// the policy places the head (any free runner, at once) or, when it chooses to wait, the next request.
    /// </summary>
    public IReadOnlyList<Dispatch> Pump(DateTimeOffset now)
    {
        var dispatches = new List<Dispatch>();
        while (Queue.Head is { } head && Index.Free.Count > 0)
        {
            var next = policy.FreedRunnerTakesHeldRequest && now - head.AcceptedAt < options.StarvationBound ? OldestHeld() : null;
            next ??= PlaceByPolicy(now);
            if (next is not { } dispatch)
            {
                break;
            }

            Start(dispatch, now);
            dispatches.Add(dispatch);
        }

        return dispatches;
    }

    /// <summary>Frees the request's runner slot; false when the request was not in flight (already retried, or unknown).</summary>
    public bool Complete(string requestId, string runnerId)
    {
        if (!_inFlight.TryGetValue(requestId, out var running) || running.RunnerId != runnerId)
        {
            return false;
        }

        _inFlight.Remove(requestId);
        Index.MarkCompleted(runnerId);
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

        Index.MarkCompleted(running.RunnerId);
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
        Index.MarkAdopted(runnerId, now);
    }

    /// <summary>
    /// The oldest request of the head's class that a free runner holds a hint for, found through the queue's hint index
    /// (no depth limit, so a long queue never hides a request a runner could serve). It walks whichever side is
    /// smaller: the distinct hints waiting in the queue, or the free runners' hints.
    /// </summary>
    private Dispatch? OldestHeld()
    {
        RequestTicket? oldest = null;
        void Consider(RequestTicket? candidate)
        {
            if (candidate is not null && (oldest is null || Queue.StartsBefore(candidate, oldest)))
            {
                oldest = candidate;
            }
        }

        if (Queue.HeadClassHints.Count <= Index.Free.Count)
        {
            foreach (var hint in Queue.HeadClassHints)
            {
                if (HintAffinityPolicy.BestHolder(hint, Index) is not null)
                {
                    Consider(Queue.OldestInHeadClassWith(hint));
                }
            }
        }
        else
        {
            foreach (var runner in Index.Free)
            {
                foreach (var held in runner.Hints)
                {
                    Consider(Queue.OldestInHeadClassWith(held));
                }

                foreach (var held in runner.Loading)
                {
                    Consider(Queue.OldestInHeadClassWith(held));
                }
            }
        }

        if (oldest is null)
        {
            return null;
        }

        foreach (var hint in RequestHints.Of(oldest))
        {
            if (HintAffinityPolicy.BestHolder(hint, Index) is { } holder)
            {
                return new Dispatch(oldest, holder.RunnerId, HintHit: true, NextAttempt(oldest));
            }
        }

        return null;
    }

    private Dispatch? PlaceByPolicy(DateTimeOffset now)
    {
        var scanned = 0;
        foreach (var ticket in Queue.HeadClass)
        {
            if (scanned++ >= options.ScanDepth)
            {
                break;
            }

            var decision = policy.Choose(ticket, Index, now);
            switch (decision.Kind)
            {
                case PlacementKind.Place:
                    return new Dispatch(ticket, decision.RunnerId!, decision.HintHit, NextAttempt(ticket));
                case PlacementKind.None:
                    return null;
            }
        }

        return null;
    }

    private int NextAttempt(RequestTicket ticket) => _priorAttempts.GetValueOrDefault(ticket.RequestId) + 1;

    private void Start(Dispatch dispatch, DateTimeOffset now)
    {
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
