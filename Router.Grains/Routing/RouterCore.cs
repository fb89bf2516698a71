using FalHints.Client.Contracts;
using FalHints.Router.Placement;
using FalHints.Router.Queue;

namespace FalHints.Router.Routing;

/// <summary>
/// The whole decision state of one app's router, as a state machine without Orleans, tasks or clock reads: events go
/// in (a request enqueued or resumed, a runner's event, a completion, the answer to a call the core asked for, a tick
/// with the time and the live silos), and the effects they cause come out (<see cref="TakeEffects"/>): send a request
/// to a runner, tell a request grain it started, was requeued or failed, confirm a runner, ask a runner about a
/// request, load a model in the background, wake up at a time. The router grain carries the effects out and feeds back
/// what came of them; the benchmark simulator drives the same core in virtual time, failures included.
/// Placement itself is the <see cref="Dispatcher"/>'s (and its policy's); the core adds what keeps requests alive:
/// runner liveness (membership, heartbeats, suspicion and confirmation), audits of requests in flight, adoption of
/// requests after a restart, the discovery timeout and start deadlines.
/// </summary>
public sealed class RouterCore
{
    private readonly RouterOptions _options;
    private readonly List<RouterEffect> _effects = [];

    // Runners asked for their current state and not answered yet.
    private readonly HashSet<string> _confirming = new(StringComparer.Ordinal);

    // Requests whose dispatch has not been answered yet (their runner may not have them yet either), and whether their
    // grain is to be told of the start once it is (a start answered in the enqueue's reply is not).
    private readonly Dictionary<InFlightRequest, bool> _sending = new(ReferenceEqualityComparer.Instance);

    // Since when the router has known no runner (its start, or the loss of its last runner); MaxValue while it knows one.
    private DateTimeOffset _noRunnersSince;

    // When the router last asked runners about the requests they run, and how many answers it awaits.
    private DateTimeOffset _auditedAt;
    private int _auditsOpen;

    // Requests asked about because their runner reported fewer requests than the router counts there (asked once each).
    private readonly HashSet<InFlightRequest> _doubted = new(ReferenceEqualityComparer.Instance);

    // For requests their runner took, the sequence of its last event then: a later event counts them while they run.
    private readonly Dictionary<InFlightRequest, long> _acceptedAfter = new(ReferenceEqualityComparer.Instance);

    // Requests on runners whose reports fell short of them at the last sweep, and the set the next sweep fills.
    private HashSet<InFlightRequest> _shortAtLastSweep = new(ReferenceEqualityComparer.Instance);
    private HashSet<InFlightRequest> _shortNow = new(ReferenceEqualityComparer.Instance);

    // The earliest wake-up asked for and not yet come.
    private DateTimeOffset _wakeAt = DateTimeOffset.MaxValue;

    /// <summary>A router for <paramref name="appId"/> that starts at <paramref name="now"/>, knowing no runner.</summary>
    public RouterCore(string appId, IPlacementPolicy policy, RouterOptions options, DateTimeOffset now)
    {
        AppId = appId;
        _options = options;
        Dispatcher = new Dispatcher(policy, options.ToDispatcherOptions()) { PrewarmsEnabled = options.PolicyPrewarms };
        _noRunnersSince = _auditedAt = now;
    }

    /// <summary>The app.</summary>
    public string AppId { get; }

    /// <summary>The index, queue and requests in flight, and the placement policy.</summary>
    public Dispatcher Dispatcher { get; }

    /// <summary>Runners asked to confirm their state and not answered yet.</summary>
    public IReadOnlyCollection<string> Confirming => _confirming;

    /// <summary>The effects caused since the last call, in order; the list is emptied.</summary>
    public IReadOnlyList<RouterEffect> TakeEffects()
    {
        var effects = _effects.ToList();
        _effects.Clear();
        return effects;
    }

    /// <summary>What the app declared (from its registration) before any runner reported: its hint field and input limits.</summary>
    public void Declare(AppRouting routing) => Dispatcher.Index.Declare(routing);

    /// <summary>
    /// A new request: refused (another app, input over the app's limits, a full queue), or queued with the hint the
    /// app's hint field gives it when it has none, and started at once if the policy says so. The answer carries that
    /// start (its grain is not told again).
    /// </summary>
    public EnqueueResult Enqueue(RequestTicket ticket, DateTimeOffset now)
    {
        if (!string.Equals(ticket.Request.AppId, AppId, StringComparison.Ordinal))
        {
            return new EnqueueResult(RequestState.Completed, null,
                new RequestError(ErrorCodes.InvalidInput, $"Request for app '{ticket.Request.AppId}' was sent to the router of '{AppId}'."));
        }

        if (Dispatcher.FindInFlight(ticket.RequestId) is not null)
        {
            return new EnqueueResult(RequestState.InProgress, null, null);
        }

        // Refused now rather than after it waited for a runner that would refuse it.
        if (Dispatcher.Index.Routing is { } routing && InputLimits.Violation(ticket.Request.InputJson, routing.InputLimits) is { } violation)
        {
            return new EnqueueResult(RequestState.Completed, null, new RequestError(ErrorCodes.InvalidInput, violation));
        }

        var placed = WithDeclaredHint(ticket);
        if (Dispatcher.Enqueue(placed) is { } error)
        {
            return new EnqueueResult(RequestState.Completed, null, error);
        }

        var started = Pump(now, answering: ticket.RequestId);
        var declared = ReferenceEquals(placed, ticket) ? null : placed.Request.Hint;
        return Dispatcher.Queue.Position(ticket.RequestId) is { } position
            ? new EnqueueResult(RequestState.Queued, position, null, declared)
            : new EnqueueResult(RequestState.InProgress, null, null, declared, started?.RunnerId, started?.Attempt ?? 0, started?.HintHit ?? false);
    }

    /// <summary>
    /// A request grain's reminder of an unfinished request (after a restart the router learns its requests this way):
    /// a queued one is queued again, never refused; a running one is counted on its runner, which is asked whether it
    /// still has it. Both get the app's declared hint again. False when the request was known already.
    /// </summary>
    public bool Resume(RequestTicket ticket, RequestState state, string? runnerId, int attempts, DateTimeOffset now)
    {
        if (Dispatcher.Knows(ticket.RequestId))
        {
            return false;
        }

        // The request grain keeps the request as the caller sent it: the hint from the app's hint field is taken again.
        ticket = WithDeclaredHint(ticket);
        if (state == RequestState.InProgress && runnerId is not null)
        {
            Dispatcher.Adopt(ticket, runnerId, attempts, now);
            _effects.Add(new AskRunner(Dispatcher.FindInFlight(ticket.RequestId)!, Audit: false));
        }
        else if (state == RequestState.Queued)
        {
            Dispatcher.Enqueue(ticket, attempts, evenIfFull: true);
            Pump(now);
        }

        return true;
    }

    /// <summary>Removes a queued request; false when it is not queued.</summary>
    public bool Cancel(string requestId) => Dispatcher.CancelQueued(requestId);

    /// <summary>
    /// An event from the hint stream. It may be stale (it waited in the stream): a runner first seen this way takes no
    /// request until it confirms its state (<see cref="ConfirmRunner"/>).
    /// </summary>
    public void RunnerEvent(HintsEvent hints, DateTimeOffset now)
    {
        if (!string.Equals(hints.AppId, AppId, StringComparison.Ordinal))
        {
            return;
        }

        if (Dispatcher.Index.Apply(hints, now, current: false))
        {
            Pump(now);
        }

        if (Dispatcher.Index.Find(hints.RunnerId) is { Confirmed: false })
        {
            Confirm(hints.RunnerId);
        }
    }

    /// <summary>The answer to <see cref="ConfirmRunner"/>: the runner's current state for the app, or null when it could not answer or does not serve the app (it stays unconfirmed; the tick drops it once its heartbeats stop).</summary>
    public void RunnerConfirmed(string runnerId, HintsEvent? current, DateTimeOffset now)
    {
        _confirming.Remove(runnerId);
        if (current is not null)
        {
            Dispatcher.Index.Apply(current, now);
            Pump(now);
        }
    }

    /// <summary>A runner's notice that a request finished (its grain has the result), with the runner's state after it.</summary>
    public void Completed(string requestId, HintsEvent hints, DateTimeOffset now)
    {
        Dispatcher.Index.Apply(hints, now);
        Dispatcher.Complete(requestId, hints.RunnerId);
        Pump(now);
    }

    /// <summary>
    /// The runner took the request sent with <paramref name="send"/> after its event numbered
    /// <paramref name="acceptedAfter"/>: its grain is told of the start unless the enqueue's answer carried it.
    /// </summary>
    public void DispatchSucceeded(SendToRunner send, long acceptedAfter)
    {
        if (IsInFlight(send.Sent))
        {
            _acceptedAfter[send.Sent] = acceptedAfter;
        }

        if (_sending.Remove(send.Sent, out var tell) && tell)
        {
            _effects.Add(new NotifyStarted(send.Sent.Ticket.RequestId, send.Sent.RunnerId, send.HintHit, send.Sent.Attempt));
        }
    }

    /// <summary>
    /// The dispatch <paramref name="send"/> failed (<paramref name="reason"/>): its silo may be gone, or only this call
    /// failed. Only this request is taken back; the runner and its siblings take nothing more until they confirm their
    /// state directly (the tick drops them if their silo is gone).
    /// </summary>
    public void DispatchFailed(SendToRunner send, string reason, DateTimeOffset now)
    {
        var sent = send.Sent;
        _sending.Remove(sent);
        SuspectSiloOf(sent.RunnerId);
        if (IsInFlight(sent))
        {
            TakeBack(sent.Ticket.RequestId, $"Runner {sent.RunnerId} could not be reached ({reason})", now);
        }
    }

    /// <summary>The answer to <see cref="AskRunner"/>.</summary>
    public void RunnerAnswered(AskRunner asked, RunnerAnswer answer, DateTimeOffset now)
    {
        var running = asked.Request;
        var requestId = running.Ticket.RequestId;
        if (asked.Audit)
        {
            _auditsOpen--;
        }

        // Nothing to do if it runs there, or if it came back, or was retried, while the router asked.
        if (answer.Kind == RunnerAnswerKind.Running || (answer.Kind == RunnerAnswerKind.Unreachable && asked.Audit)
            || !IsInFlight(running))
        {
            return;
        }

        if (answer.Kind == RunnerAnswerKind.Completed)
        {
            // It finished, but the runner's notice never came: its slot is free again.
            Dispatcher.Complete(requestId, running.RunnerId);
            _effects.Add(new CompletionUnreported(requestId, running.RunnerId));
            Pump(now);
            return;
        }

        if (asked.Audit)
        {
            _effects.Add(new RequestMissing(requestId, running.RunnerId));
        }

        TakeBack(requestId, answer.Kind == RunnerAnswerKind.Unreachable
            ? $"Runner {running.RunnerId} was lost ({answer.Reason})"
            : $"Runner {running.RunnerId} no longer had the request", now);
    }

    /// <summary>
    /// For an operator's prewarm: up to <paramref name="runners"/> runners that are not draining and do not hold
    /// <paramref name="hint"/>, those holding the fewest hints first, then the least recently used, then by id. Book
    /// each with <see cref="BeginPrewarm"/> and send it.
    /// </summary>
    public IReadOnlyList<PrewarmChoice> PrewarmCandidates(string hint, int runners) =>
        [.. Dispatcher.Index.All.Where(r => !r.Draining && !r.Holds(hint))
            .OrderBy(r => r.Hints.Length + r.Loading.Length).ThenBy(r => r.LastUsed).ThenBy(r => r.RunnerId, StringComparer.Ordinal)
            .Take(Math.Max(0, runners)).Select(r => new PrewarmChoice(hint, r.RunnerId))];

    /// <summary>Books a background load (the runner counts busy and holding the hint until it is answered); false when the runner is gone.</summary>
    public bool BeginPrewarm(PrewarmChoice prewarm) => Dispatcher.BeginPrewarm(prewarm);

    /// <summary>
    /// The answer to a background load: the runner's state after it (null when it could not be reached: its silo is
    /// then suspected), and the app's refusal if it refused. An app that refuses a load the policy asked for gets no more.
    /// True when the model was loaded.
    /// </summary>
    public bool PrewarmAnswered(PrewarmChoice prewarm, bool forPolicy, HintsEvent? hints, RequestError? refused, DateTimeOffset now)
    {
        if (hints is not null)
        {
            Dispatcher.Index.Apply(hints, now);
        }
        else
        {
            SuspectSiloOf(prewarm.RunnerId);
        }

        Dispatcher.PrewarmDone(prewarm);
        if (forPolicy && refused is not null && Dispatcher.PrewarmsEnabled)
        {
            Dispatcher.PrewarmsEnabled = false;
            _effects.Add(new PolicyPrewarmsOff(prewarm.RunnerId, prewarm.Hint, refused.Message));
        }

        Pump(now);
        return hints is not null && refused is null;
    }

    /// <summary>The wake-up asked for with <see cref="WakeAt"/> has come.</summary>
    public void Wake(DateTimeOffset now)
    {
        _wakeAt = DateTimeOffset.MaxValue;
        Pump(now);
    }

    /// <summary>
    /// The periodic sweep, at <paramref name="now"/>, with the silos the membership lists as active: queued requests past
    /// their start deadline fail; runners whose silo left, or that sent nothing for the runner timeout, are dropped and
    /// their requests retried; requests running for a while are audited; with no runner for the whole discovery
    /// timeout, the requests that waited that long fail with <c>app_not_found</c>.
    /// </summary>
    public void Tick(DateTimeOffset now, IReadOnlySet<string> liveSilos)
    {
        foreach (var ticket in Dispatcher.ExpireStartDeadlines(now))
        {
            _effects.Add(new FailRequest(ticket, ErrorCodes.StartTimeout, $"The request did not start within its start timeout of {ticket.Options.StartTimeout}.", null));
        }

        var lost = Dispatcher.Index.All
            .Select(r => (r.RunnerId, Reason: !liveSilos.Contains(r.Silo) ? $"silo {r.Silo} left the cluster"
                : now - r.LastSeen > _options.RunnerTimeout ? $"no heartbeat for {(now - r.LastSeen).TotalSeconds:0} s" : null))
            .Where(r => r.Reason is not null)
            .ToList();

        // All are dropped before any request is placed again, so none is retried on a runner about to be dropped.
        foreach (var (runnerId, reason) in lost)
        {
            var requests = Dispatcher.RemoveRunner(runnerId);
            _confirming.Remove(runnerId);
            _effects.Add(new RunnerDropped(runnerId, reason!, requests.Count));
            ReportLost(requests, $"Runner {runnerId} was lost ({reason})");
        }

        AskWhereReportsFallShort();
        if (_auditsOpen == 0 && now - _auditedAt >= _options.InFlightCheckInterval)
        {
            _auditedAt = now;
            foreach (var running in Dispatcher.InFlight.Where(r => now - r.Since >= _options.InFlightCheckInterval && !_sending.ContainsKey(r)).ToList())
            {
                _auditsOpen++;
                _effects.Add(new AskRunner(running, Audit: true));
            }
        }

        if (Dispatcher.Index.Count > 0)
        {
            _noRunnersSince = DateTimeOffset.MaxValue;
        }
        else if (_noRunnersSince == DateTimeOffset.MaxValue)
        {
            _noRunnersSince = now;
        }

        // A request fails for want of runners only once the router has known none for the whole discovery timeout,
        // so a restarted router waits for heartbeats and retried requests wait for their app's runners to return.
        if (Dispatcher.Index.Count == 0 && Dispatcher.InFlight.Count == 0 && now - _noRunnersSince >= _options.DiscoveryTimeout)
        {
            foreach (var ticket in Dispatcher.RemoveQueuedWhere(t => now - t.AcceptedAt >= _options.DiscoveryTimeout))
            {
                _effects.Add(new FailRequest(ticket, ErrorCodes.AppNotFound,
                    $"No runner serves app '{AppId}': none announced itself within {_options.DiscoveryTimeout.TotalSeconds:0} s.", null));
            }
        }

        Pump(now);
    }

    /// <summary>
    /// A runner whose last report counts fewer requests than it had taken before making that report has finished one
    /// without its notice arriving, or lost one: when the shortfall is still there at the next sweep, the router asks
    /// about those requests rather than waiting for the next audit, so a lost notice holds a runner's slot for about
    /// two sweeps, not for the whole check interval. A request was taken before a report when the report's sequence
    /// is greater than the one its runner answered the dispatch with (a request adopted after a restart, whose
    /// dispatch the router never saw: when it was sent at least a sweep interval before the report arrived). A notice
    /// delayed by more than a sweep costs one question.
    /// </summary>
    private void AskWhereReportsFallShort()
    {
        _doubted.RemoveWhere(r => !IsInFlight(r));
        foreach (var gone in _acceptedAfter.Keys.Where(r => !IsInFlight(r)).ToList())
        {
            _acceptedAfter.Remove(gone);
        }

        foreach (var sent in Dispatcher.InFlight.Where(r => !_sending.ContainsKey(r)).GroupBy(r => r.RunnerId, StringComparer.Ordinal))
        {
            if (Dispatcher.Index.Find(sent.Key) is not { } runner)
            {
                continue;
            }

            var before = sent.Where(r => _acceptedAfter.TryGetValue(r, out var acceptedAfter)
                ? runner.Sequence > acceptedAfter
                : r.Since <= runner.LastSeen - _options.SweepInterval).ToList();
            if (runner.Reported >= before.Count)
            {
                continue;
            }

            // A notice on its way arrives within moments of its runner's event; one that is still missing at the next
            // sweep was lost.
            foreach (var request in before)
            {
                _shortNow.Add(request);
                if (_shortAtLastSweep.Contains(request) && _doubted.Add(request))
                {
                    _auditsOpen++;
                    _effects.Add(new AskRunner(request, Audit: true));
                }
            }
        }

        (_shortAtLastSweep, _shortNow) = (_shortNow, _shortAtLastSweep);
        _shortNow.Clear();
    }

    /// <summary>Whether <paramref name="request"/> is still the attempt in flight for its request (not finished, taken back or retried since).</summary>
    private bool IsInFlight(InFlightRequest request) => ReferenceEquals(Dispatcher.FindInFlight(request.Ticket.RequestId), request);

    /// <summary>What the router knows of its runners and its queue.</summary>
    public RouterSnapshot Snapshot() => new(
        AppId, Dispatcher.Index.Snapshot(), Dispatcher.Queue.Count, Dispatcher.Hits, Dispatcher.Misses,
        Dispatcher.InFlight.Count, Dispatcher.Policy.Name, Dispatcher.Retries);

    /// <summary>An app may declare an input field as its hint; callers that omit the hint still get affinity.</summary>
    private RequestTicket WithDeclaredHint(RequestTicket ticket) =>
        ticket.Request.Hint is null && Dispatcher.Index.Routing?.HintField is { } field && HintFields.Extract(ticket.Request.InputJson, field) is { } hint
            ? ticket with { Request = ticket.Request with { Hint = hint } }
            : ticket;

    /// <summary>
    /// Starts what the policy starts now and books the background loads it asks for. The start of the request being
    /// <paramref name="answering"/> (an enqueue) is returned, for the enqueue's answer.
    /// </summary>
    private Dispatch? Pump(DateTimeOffset now, string? answering = null)
    {
        Dispatch? answered = null;
        foreach (var dispatch in Dispatcher.Pump(now))
        {
            var inAnswer = string.Equals(dispatch.Ticket.RequestId, answering, StringComparison.Ordinal);
            answered = inAnswer ? dispatch : answered;
            var sent = Dispatcher.FindInFlight(dispatch.Ticket.RequestId)!;
            _sending[sent] = !inAnswer;
            _effects.Add(new SendToRunner(sent, dispatch.HintHit, now - dispatch.Ticket.AcceptedAt));
        }

        foreach (var prewarm in Dispatcher.Prewarms)
        {
            _effects.Add(new PrewarmRunner(prewarm, ForPolicy: true));
        }

        // Sooner wake-ups than the next tick only: the tick pumps anyway.
        if (Dispatcher.NextWake is { } wake && wake < _wakeAt && wake - now < _options.SweepInterval)
        {
            _wakeAt = wake;
            _effects.Add(new WakeAt(wake));
        }

        return answered;
    }

    /// <summary>A call to a runner failed: it and its siblings on the same silo take nothing more until each confirms its state.</summary>
    private void SuspectSiloOf(string runnerId)
    {
        if (Dispatcher.Index.Find(runnerId)?.Silo is { } silo)
        {
            foreach (var suspect in Dispatcher.Index.Suspect(silo))
            {
                Confirm(suspect);
            }
        }
    }

    private void Confirm(string runnerId)
    {
        if (_confirming.Add(runnerId))
        {
            _effects.Add(new ConfirmRunner(runnerId));
        }
    }

    /// <summary>
    /// Takes back one running request whose runner does not have it: queued again (and placed at once if a runner is
    /// free), or failed when it may not be retried; its grain is told what <paramref name="happened"/>.
    /// </summary>
    private void TakeBack(string requestId, string happened, DateTimeOffset now)
    {
        if (Dispatcher.Lose(requestId) is { } lost)
        {
            ReportLost([lost], happened);
            Pump(now);
        }
    }

    /// <summary>Tells lost requests' grains what <paramref name="happened"/> (a sentence without its full stop) and what follows.</summary>
    private void ReportLost(IReadOnlyList<LostRequest> lost, string happened)
    {
        foreach (var request in lost)
        {
            if (request.Requeued)
            {
                _effects.Add(new NotifyRequeued(request.Ticket.RequestId, request.RunnerId, request.Attempts,
                    $"{happened}; retrying (attempt {request.Attempts} of {_options.MaxAttempts} failed)."));
            }
            else
            {
                var why = request.Ticket.Options.NoRetry ? "the caller opted out of retries" : $"all {request.Attempts} attempts failed";
                _effects.Add(new FailRequest(request.Ticket, ErrorCodes.RunnerFailed, $"{happened} and {why}.", request.RunnerId));
            }
        }
    }
}
