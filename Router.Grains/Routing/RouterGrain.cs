using System.Collections.Immutable;
using FalHints.Client.Contracts;
using FalHints.Router.Metrics;
using FalHints.Router.Placement;
using FalHints.Router.Queue;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Concurrency;
using Orleans.Streams;

namespace FalHints.Router.Routing;

/// <summary>
/// The router of one app. It feeds runner events into a <see cref="Dispatcher"/> and acts on its decisions: a request
/// goes at once to a free runner (one holding its hint when there is one), and waits in the queue only when no runner
/// is free; a background load the policy asks for is sent to its runner. Runners that die (their silo leaves the membership, or they stop sending heartbeats) are dropped at once
/// and their requests retried. Request state lives in request grains, so a router that restarts loses nothing.
/// </summary>
[Reentrant]
[ImplicitStreamSubscription(HintStream.Namespace)]
public sealed partial class RouterGrain(
    IOptions<RouterOptions> options,
    PlacementPolicyCatalog policies,
    IClusterMembershipService membership,
    RouterMetrics metrics,
    GrainReferences<IRequestGrain> requests,
    GrainReferences<IRunnerGrain> runners,
    TimeProvider time,
    ILogger<RouterGrain> logger) : Grain, IRouterGrain
{
    private readonly HashSet<string> _confirming = new(StringComparer.Ordinal);

    // Requests whose dispatch call has not returned yet: their runner may not have them yet either.
    private readonly HashSet<InFlightRequest> _sending = new(ReferenceEqualityComparer.Instance);
    private Dispatcher _dispatcher = null!;
    private string _appId = null!;

    // Since when the router has known no runner (its activation, or the loss of its last runner).
    private DateTimeOffset _noRunnersSince;

    // A policy that holds requests back asks to be called again at a time; the earliest such wake-up, if sooner than the sweep.
    private IGrainTimer? _wake;
    private DateTimeOffset _wakeAt = DateTimeOffset.MaxValue;

    // When the router last asked runners about the requests they run, and whether it is asking now.
    private DateTimeOffset _checkedAt;
    private bool _checking;

    /// <inheritdoc />
    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _appId = this.GetPrimaryKeyString();
        var settings = options.Value;
        var policy = policies.Create(settings.Policy, new SeededRandom(settings.RandomSeed ?? Random.Shared.Next()));
        _dispatcher = new Dispatcher(policy, settings.ToDispatcherOptions()) { PrewarmsEnabled = settings.PolicyPrewarms };
        _noRunnersSince = _checkedAt = time.GetUtcNow();
        await DeclareAsync();
        var stream = this.GetStreamProvider(HintStream.ProviderName).GetStream<HintsEvent>(StreamId.Create(HintStream.Namespace, _appId));
        await stream.SubscribeAsync((hints, _) =>
        {
            OnHints(hints);
            return Task.CompletedTask;
        });

        this.RegisterGrainTimer(SweepAsync, new GrainTimerCreationOptions(settings.SweepInterval, settings.SweepInterval) { Interleave = true });
        LogActivated(logger, _appId, policy.Name);
    }

    /// <summary>
    /// Reads the app's declaration (its hint field and input limits) from the app registry, so the first requests, which
    /// may arrive before any runner has reported, get the declared hint and the input checks too.
    /// </summary>
    private async Task DeclareAsync()
    {
        try
        {
            if (await GrainFactory.GetGrain<IAppRegistryGrain>(0).GetDeclarationAsync(_appId) is { } declared)
            {
                _dispatcher.Index.Declare(declared.ToRouting());
            }
        }
        catch (Exception ex)
        {
            // The runners' first reports carry the same.
            LogDeclarationUnread(logger, ex, _appId);
        }
    }

    /// <inheritdoc />
    public Task<EnqueueResult> EnqueueAsync(RequestTicket ticket)
    {
        if (!string.Equals(ticket.Request.AppId, _appId, StringComparison.Ordinal))
        {
            return Task.FromResult(new EnqueueResult(RequestState.Completed, null,
                new RequestError(ErrorCodes.InvalidInput, $"Request for app '{ticket.Request.AppId}' was sent to the router of '{_appId}'.")));
        }

        if (_dispatcher.FindInFlight(ticket.RequestId) is not null)
        {
            return Task.FromResult(new EnqueueResult(RequestState.InProgress, null, null));
        }

        // Refused now rather than after it waited for a runner that would refuse it.
        if (_dispatcher.Index.Routing is { } routing && InputLimits.Violation(ticket.Request.InputJson, routing.InputLimits) is { } violation)
        {
            return Task.FromResult(new EnqueueResult(RequestState.Completed, null, new RequestError(ErrorCodes.InvalidInput, violation)));
        }

        var placed = WithDeclaredHint(ticket);
        if (_dispatcher.Enqueue(placed) is { } error)
        {
            return Task.FromResult(new EnqueueResult(RequestState.Completed, null, error));
        }

        var started = Pump(answering: ticket.RequestId);
        var declared = ReferenceEquals(placed, ticket) ? null : placed.Request.Hint;
        return Task.FromResult(_dispatcher.Queue.Position(ticket.RequestId) is { } position
            ? new EnqueueResult(RequestState.Queued, position, null, declared)
            : new EnqueueResult(RequestState.InProgress, null, null, declared, started?.RunnerId, started?.Attempt ?? 0, started?.HintHit ?? false));
    }

    /// <inheritdoc />
    public Task<int?> GetPositionAsync(string requestId) => Task.FromResult(_dispatcher.Queue.Position(requestId));

    /// <inheritdoc />
    public Task<bool> CancelAsync(string requestId) => Task.FromResult(_dispatcher.CancelQueued(requestId));

    /// <inheritdoc />
    public Task ResumeAsync(RequestTicket ticket, RequestState state, string? runnerId, int attempts)
    {
        if (_dispatcher.Knows(ticket.RequestId))
        {
            return Task.CompletedTask;
        }

        // The request grain keeps the request as the caller sent it: the hint from the app's hint field is taken again.
        ticket = WithDeclaredHint(ticket);
        if (state == RequestState.InProgress && runnerId is not null)
        {
            _dispatcher.Adopt(ticket, runnerId, attempts, time.GetUtcNow());
            _ = VerifyAdoptedAsync(ticket.RequestId, runnerId);
        }
        else if (state == RequestState.Queued)
        {
            // An accepted request is never refused again, even if the queue has filled since.
            _dispatcher.Enqueue(ticket, attempts, evenIfFull: true);
            Pump();
        }

        LogResumed(logger, ticket.RequestId, _appId, state);
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task CompletedAsync(string requestId, HintsEvent hints)
    {
        _dispatcher.Index.Apply(hints, time.GetUtcNow());
        _dispatcher.Complete(requestId, hints.RunnerId);
        Pump();
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public async Task<ImmutableArray<string>> PrewarmAsync(string hint, int runners)
    {
        var candidates = _dispatcher.Index.All.Where(r => !r.Draining && !r.Holds(hint))
            .OrderBy(r => r.Hints.Length + r.Loading.Length).ThenBy(r => r.LastUsed).ThenBy(r => r.RunnerId, StringComparer.Ordinal)
            .Take(Math.Max(0, runners)).Select(r => r.RunnerId).ToList();
        var warmed = ImmutableArray.CreateBuilder<string>();
        foreach (var runnerId in candidates)
        {
            var prewarm = new PrewarmChoice(hint, runnerId);
            if (_dispatcher.BeginPrewarm(prewarm))
            {
                var (loaded, _) = await SendPrewarmAsync(prewarm);
                Pump();
                if (loaded)
                {
                    warmed.Add(runnerId);
                }
            }
        }

        return warmed.ToImmutable();
    }

    /// <inheritdoc />
    public Task<RouterSnapshot> GetSnapshotAsync() => Task.FromResult(new RouterSnapshot(
        _appId, _dispatcher.Index.Snapshot(), _dispatcher.Queue.Count, _dispatcher.Hits, _dispatcher.Misses,
        _dispatcher.InFlight.Count, _dispatcher.Policy.Name, _dispatcher.Retries));

    private void OnHints(HintsEvent hints)
    {
        if (!string.Equals(hints.AppId, _appId, StringComparison.Ordinal))
        {
            return;
        }

        if (_dispatcher.Index.Apply(hints, time.GetUtcNow(), current: false))
        {
            Pump();
        }

        if (_dispatcher.Index.Find(hints.RunnerId) is { Confirmed: false } && _confirming.Add(hints.RunnerId))
        {
            _ = ConfirmAsync(hints.RunnerId);
        }
    }

    /// <summary>Asks a newly seen runner for its current state, since the event that revealed it may be stale.</summary>
    private async Task ConfirmAsync(string runnerId)
    {
        try
        {
            var status = await GrainFactory.GetGrain<IRunnerGrain>(runnerId).GetStatusAsync();
            if (status.Apps.FirstOrDefault(a => a.AppId == _appId) is { } state)
            {
                _dispatcher.Index.Apply(state, time.GetUtcNow());
                Pump();
            }
        }
        catch (Exception ex)
        {
            // A runner that cannot answer stays unconfirmed; the sweep drops it once its heartbeats stop.
            LogConfirmFailed(logger, ex, runnerId);
        }
        finally
        {
            _confirming.Remove(runnerId);
        }
    }

    /// <summary>An app may declare an input field as its hint; callers that omit the hint still get affinity.</summary>
    private RequestTicket WithDeclaredHint(RequestTicket ticket) =>
        ticket.Request.Hint is null && _dispatcher.Index.Routing?.HintField is { } field && HintFields.Extract(ticket.Request.InputJson, field) is { } hint
            ? ticket with { Request = ticket.Request with { Hint = hint } }
            : ticket;

    /// <summary>
    /// Sends what the dispatcher starts now. The start of the request being <paramref name="answering"/> (an enqueue)
    /// goes back in that call's answer; each other start is told to its request grain. Returns the answered start.
    /// </summary>
    private Dispatch? Pump(string? answering = null)
    {
        var now = time.GetUtcNow();
        Dispatch? answered = null;
        foreach (var dispatch in _dispatcher.Pump(now))
        {
            metrics.Dispatched(_appId, dispatch.Ticket.Request.Hint is not null, dispatch.HintHit, now - dispatch.Ticket.AcceptedAt);
            var inAnswer = string.Equals(dispatch.Ticket.RequestId, answering, StringComparison.Ordinal);
            answered = inAnswer ? dispatch : answered;
            _ = DispatchAsync(dispatch, tellRequest: !inAnswer);
        }

        foreach (var prewarm in _dispatcher.Prewarms)
        {
            _ = PrewarmForPolicyAsync(prewarm);
        }

        if (_dispatcher.NextWake is { } wake && wake < _wakeAt && wake - now < options.Value.SweepInterval)
        {
            _wake?.Dispose();
            _wakeAt = wake;
            _wake = this.RegisterGrainTimer(_ =>
            {
                _wakeAt = DateTimeOffset.MaxValue;
                Pump();
                return Task.CompletedTask;
            }, new GrainTimerCreationOptions(wake > now ? wake - now : TimeSpan.Zero, Timeout.InfiniteTimeSpan) { Interleave = true });
        }

        return answered;
    }

    /// <summary>A background load the policy asked for (booked by the dispatcher); an app that refuses one gets no more.</summary>
    private async Task PrewarmForPolicyAsync(PrewarmChoice prewarm)
    {
        var (_, refused) = await SendPrewarmAsync(prewarm);
        if (refused is not null && _dispatcher.PrewarmsEnabled)
        {
            _dispatcher.PrewarmsEnabled = false;
            LogPolicyPrewarmsOff(logger, _appId, prewarm.RunnerId, prewarm.Hint, refused.Message);
        }

        Pump();
    }

    /// <summary>
    /// Sends a background load booked with the dispatcher (which counts the runner busy and holding the hint meanwhile)
    /// and ends it there when the runner answers: loaded, or refused by the app with an error, or not reached (logged).
    /// </summary>
    private async Task<(bool Loaded, RequestError? Refused)> SendPrewarmAsync(PrewarmChoice prewarm)
    {
        try
        {
            var response = await GrainFactory.GetGrain<IRunnerGrain>(prewarm.RunnerId).PrewarmAsync(_appId, prewarm.Hint);
            _dispatcher.Index.Apply(response.Hints, time.GetUtcNow());
            if (response.Error is { } error)
            {
                LogPrewarmFailed(logger, null, prewarm.RunnerId, prewarm.Hint, error.Message);
                return (false, error);
            }

            return (true, null);
        }
        catch (Exception ex)
        {
            LogPrewarmFailed(logger, ex, prewarm.RunnerId, prewarm.Hint, ex.Message);
            SuspectSiloOf(prewarm.RunnerId);
            return (false, null);
        }
        finally
        {
            _dispatcher.PrewarmDone(prewarm);
        }
    }

    private async Task DispatchAsync(Dispatch dispatch, bool tellRequest)
    {
        var request = dispatch.Ticket.Request;
        var sent = _dispatcher.FindInFlight(request.RequestId)!;
        _sending.Add(sent);
        try
        {
            await Runner(dispatch.RunnerId).DispatchAsync(
                new RunnerInvocation(request.RequestId, _appId, request.InputJson, request.Path, dispatch.Attempt, dispatch.HintHit));
        }
        catch (Exception ex)
        {
            LogDispatchFailed(logger, ex, dispatch.RunnerId, request.RequestId, dispatch.Attempt);

            // Only this request is taken back; the runner and its siblings wait to be confirmed.
            SuspectSiloOf(dispatch.RunnerId);

            if (ReferenceEquals(_dispatcher.FindInFlight(request.RequestId), sent))
            {
                await TakeBackAsync(request.RequestId, $"Runner {dispatch.RunnerId} could not be reached ({ex.GetBaseException().Message})");
            }

            return;
        }
        finally
        {
            _sending.Remove(sent);
        }

        if (!tellRequest)
        {
            return;
        }

        try
        {
            await Request(request.RequestId).StartedAsync(dispatch.RunnerId, dispatch.HintHit, dispatch.Attempt);
        }
        catch (Exception ex)
        {
            LogRequestUnreachable(logger, ex, request.RequestId);
        }
    }

    /// <summary>
    /// A call to a runner failed: its silo may be gone, or only this call failed (a timeout, a lookup cancelled while a
    /// node joins). The runner and its siblings take nothing more until they answer the router directly. If the silo
    /// is gone, the sweep drops its runners, and their requests, once the membership says so; a runner that answers is
    /// used again.
    /// </summary>
    private void SuspectSiloOf(string runnerId)
    {
        if (_dispatcher.Index.Find(runnerId)?.Silo is { } silo)
        {
            foreach (var suspect in _dispatcher.Index.Suspect(silo).Where(_confirming.Add))
            {
                _ = ConfirmAsync(suspect);
            }
        }
    }

    /// <summary>
    /// A request adopted after a restart may have been lost with its runner (a silo that died and came back under the
    /// same name runs a new runner that never saw it): ask the runner, and take it back if it does not have it.
    /// </summary>
    private async Task VerifyAdoptedAsync(string requestId, string runnerId)
    {
        string happened;
        try
        {
            if (await GrainFactory.GetGrain<IRunnerGrain>(runnerId).IsRunningAsync(requestId))
            {
                return;
            }

            happened = $"Runner {runnerId} no longer had the request";
        }
        catch (Exception ex)
        {
            happened = $"Runner {runnerId} was lost ({ex.GetBaseException().Message})";
        }

        if (_dispatcher.FindInFlight(requestId)?.RunnerId == runnerId)
        {
            await TakeBackAsync(requestId, happened);
        }
    }

    /// <summary>
    /// Asks the runners of requests sent a while ago whether they still run them. A runner that does not either finished
    /// the request but could not report it here (its slot is freed) or lost it (the request is retried): without this,
    /// such a request would hold its runner's slot, and its caller would wait, forever.
    /// </summary>
    private async Task CheckInFlightAsync(List<InFlightRequest> due)
    {
        try
        {
            await Task.WhenAll(due.Select(CheckInFlightAsync));
        }
        finally
        {
            _checking = false;
        }
    }

    private async Task CheckInFlightAsync(InFlightRequest running)
    {
        var requestId = running.Ticket.RequestId;
        RequestStatus status;
        try
        {
            if (await GrainFactory.GetGrain<IRunnerGrain>(running.RunnerId).IsRunningAsync(requestId))
            {
                return;
            }

            status = await Request(requestId).GetStatusAsync();
        }
        catch (Exception ex)
        {
            // A runner that cannot answer is the sweep's to judge (membership and heartbeats); ask again next time.
            LogCheckFailed(logger, ex, running.RunnerId, requestId);
            return;
        }

        if (!ReferenceEquals(_dispatcher.FindInFlight(requestId), running))
        {
            // It came back, or was retried, while the router asked.
            return;
        }

        if (status.State == RequestState.Completed)
        {
            _dispatcher.Complete(requestId, running.RunnerId);
            LogCompletionUnreported(logger, requestId, running.RunnerId);
            Pump();
            return;
        }

        LogRequestMissing(logger, requestId, running.RunnerId);
        await TakeBackAsync(requestId, $"Runner {running.RunnerId} no longer had the request");
    }

    /// <summary>
    /// Takes back one running request whose runner does not have it: queued again (and placed at once if a runner is
    /// free), or failed when it may not be retried; its grain is told what <paramref name="happened"/>.
    /// </summary>
    private async Task TakeBackAsync(string requestId, string happened)
    {
        if (_dispatcher.Lose(requestId) is { } lost)
        {
            var reported = ReportLostAsync([lost], happened);
            Pump();
            await reported;
        }
    }

    /// <summary>
    /// Drops runners; their requests go back to the queue, or fail when they may not be retried. All are dropped before
    /// any request is placed again, so none is retried on a runner about to be dropped with the others.
    /// </summary>
    private async Task LoseRunnersAsync(IReadOnlyList<(string RunnerId, string Reason)> runners)
    {
        var reports = new List<(IReadOnlyList<LostRequest> Lost, string Happened)>();
        foreach (var (runnerId, reason) in runners)
        {
            var lost = _dispatcher.RemoveRunner(runnerId);
            LogRunnerLost(logger, runnerId, _appId, reason, lost.Count);
            reports.Add((lost, $"Runner {runnerId} was lost ({reason})"));
        }

        var reported = Task.WhenAll(reports.Select(r => ReportLostAsync(r.Lost, r.Happened)));
        Pump();
        await reported;
    }

    /// <summary>Tells lost requests' grains what <paramref name="happened"/> (a sentence without its full stop) and what follows.</summary>
    private async Task ReportLostAsync(IReadOnlyList<LostRequest> lost, string happened)
    {
        foreach (var request in lost)
        {
            try
            {
                if (request.Requeued)
                {
                    metrics.Retried(_appId);
                    await Request(request.Ticket.RequestId).RequeuedAsync(request.RunnerId, request.Attempts, $"{happened}; retrying (attempt {request.Attempts} of {options.Value.MaxAttempts} failed).");
                }
                else
                {
                    var why = request.Ticket.Options.NoRetry ? "the caller opted out of retries" : $"all {request.Attempts} attempts failed";
                    await Request(request.Ticket.RequestId).CompleteAsync(Failed(request.Ticket, ErrorCodes.RunnerFailed,
                        $"{happened} and {why}.") with { RunnerId = request.RunnerId });
                }
            }
            catch (Exception ex)
            {
                LogRequestUnreachable(logger, ex, request.Ticket.RequestId);
            }
        }
    }

    private async Task SweepAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var settings = options.Value;
        foreach (var ticket in _dispatcher.ExpireStartDeadlines(now))
        {
            await FailAsync(ticket, ErrorCodes.StartTimeout, $"The request did not start within its start timeout of {ticket.Options.StartTimeout}.");
        }

        var activeSilos = membership.CurrentSnapshot.Members.Values
            .Where(m => m.Status == SiloStatus.Active).Select(m => m.Name).ToHashSet(StringComparer.Ordinal);
        var lost = _dispatcher.Index.All
            .Select(r => (r.RunnerId, Reason: !activeSilos.Contains(r.Silo) ? $"silo {r.Silo} left the cluster"
                : now - r.LastSeen > settings.RunnerTimeout ? $"no heartbeat for {(now - r.LastSeen).TotalSeconds:0} s" : null))
            .Where(r => r.Reason is not null)
            .ToList();
        if (lost.Count > 0)
        {
            // Not awaited: the runners are dropped and their requests placed again at once, and telling the requests'
            // grains (which may have died with the same silo) must not hold up the next sweeps.
            _ = LoseRunnersAsync([.. lost.Select(r => (r.RunnerId, r.Reason!))]);
        }

        if (!_checking && now - _checkedAt >= settings.InFlightCheckInterval)
        {
            _checkedAt = now;
            var due = _dispatcher.InFlight.Where(r => now - r.Since >= settings.InFlightCheckInterval && !_sending.Contains(r)).ToList();
            if (due.Count > 0)
            {
                _checking = true;
                _ = CheckInFlightAsync(due);
            }
        }

        if (_dispatcher.Index.Count > 0)
        {
            _noRunnersSince = DateTimeOffset.MaxValue;
        }
        else if (_noRunnersSince == DateTimeOffset.MaxValue)
        {
            _noRunnersSince = now;
        }

        // A request fails for want of runners only once the router has known none for the whole discovery timeout,
        // so a restarted router waits for heartbeats and retried requests wait for their app's runners to return.
        if (_dispatcher.Index.Count == 0 && _dispatcher.InFlight.Count == 0 && now - _noRunnersSince >= settings.DiscoveryTimeout)
        {
            foreach (var ticket in _dispatcher.RemoveQueuedWhere(t => now - t.AcceptedAt >= settings.DiscoveryTimeout))
            {
                await FailAsync(ticket, ErrorCodes.AppNotFound,
                    $"No runner serves app '{_appId}': none announced itself within {settings.DiscoveryTimeout.TotalSeconds:0} s.");
            }
        }

        Pump();
    }

    private async Task FailAsync(RequestTicket ticket, string code, string message)
    {
        try
        {
            await Request(ticket.RequestId).CompleteAsync(Failed(ticket, code, message));
        }
        catch (Exception ex)
        {
            LogRequestUnreachable(logger, ex, ticket.RequestId);
        }
    }

    private IRequestGrain Request(string requestId) => requests.Get(requestId);

    private IRunnerGrain Runner(string runnerId) => runners.Get(runnerId);

    private static InferenceResult Failed(RequestTicket ticket, string code, string message) =>
        new(ticket.RequestId, null, new RequestError(code, message), null, HintHit: false);
}
