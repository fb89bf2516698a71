using System.Collections.Immutable;
using FalHints.Client.Contracts;
using FalHints.Router.Metrics;
using FalHints.Router.Placement;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Concurrency;
using Orleans.Streams;

namespace FalHints.Router.Routing;

/// <summary>
/// The router of one app, as Orleans hosts it: it feeds calls, runner events, the membership and the clock into a
/// <see cref="RouterCore"/>, which makes every decision, and carries out the effects the core returns (calls to
/// runners and request grains, timers, logs, metrics), feeding back what came of each. Request state lives in
/// request grains, so a router that restarts loses nothing: they remind the new activation of themselves.
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
    private RouterCore _core = null!;
    private IGrainTimer? _wake;

    private string AppId => _core.AppId;

    /// <inheritdoc />
    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        var settings = options.Value;
        var policy = policies.Create(settings.Policy, new SeededRandom(settings.RandomSeed ?? Random.Shared.Next()));
        _core = new RouterCore(this.GetPrimaryKeyString(), policy, settings, time.GetUtcNow());
        await DeclareAsync();
        var stream = this.GetStreamProvider(HintStream.ProviderName).GetStream<HintsEvent>(StreamId.Create(HintStream.Namespace, AppId));
        await stream.SubscribeAsync((hints, _) => Run(() => _core.RunnerEvent(hints, time.GetUtcNow())));
        this.RegisterGrainTimer(_ => Run(() => _core.Tick(time.GetUtcNow(), ActiveSilos())),
            new GrainTimerCreationOptions(settings.SweepInterval, settings.SweepInterval) { Interleave = true });
        LogActivated(logger, AppId, policy.Name);
    }

    /// <inheritdoc />
    public Task<EnqueueResult> EnqueueAsync(RequestTicket ticket)
    {
        var result = _core.Enqueue(ticket, time.GetUtcNow());
        Carry();
        return Task.FromResult(result);
    }

    /// <inheritdoc />
    public Task<int?> GetPositionAsync(string requestId) => Task.FromResult(_core.Dispatcher.Queue.Position(requestId));

    /// <inheritdoc />
    public Task<bool> CancelAsync(string requestId) => Task.FromResult(_core.Cancel(requestId));

    /// <inheritdoc />
    public Task ResumeAsync(RequestTicket ticket, RequestState state, string? runnerId, int attempts)
    {
        if (_core.Resume(ticket, state, runnerId, attempts, time.GetUtcNow()))
        {
            LogResumed(logger, ticket.RequestId, AppId, state);
        }

        Carry();
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task CompletedAsync(string requestId, HintsEvent hints) => Run(() => _core.Completed(requestId, hints, time.GetUtcNow()));

    /// <inheritdoc />
    public async Task<ImmutableArray<string>> PrewarmAsync(string hint, int runners)
    {
        var warmed = ImmutableArray.CreateBuilder<string>();
        foreach (var prewarm in _core.PrewarmCandidates(hint, runners))
        {
            if (_core.BeginPrewarm(prewarm) && await PrewarmRunnerAsync(new PrewarmRunner(prewarm, ForPolicy: false)))
            {
                warmed.Add(prewarm.RunnerId);
            }
        }

        return warmed.ToImmutable();
    }

    /// <inheritdoc />
    public Task<RouterSnapshot> GetSnapshotAsync() => Task.FromResult(_core.Snapshot());

    /// <summary>The app's declaration (hint field, input limits) from the registry, so the first requests get them before any runner reports.</summary>
    private async Task DeclareAsync()
    {
        try
        {
            if (await GrainFactory.GetGrain<IAppRegistryGrain>(0).GetDeclarationAsync(AppId) is { } declared)
            {
                _core.Declare(declared.ToRouting());
            }
        }
        catch (Exception ex)
        {
            // The runners' first reports carry the same.
            LogDeclarationUnread(logger, ex, AppId);
        }
    }

    private HashSet<string> ActiveSilos() => membership.CurrentSnapshot.Members.Values
        .Where(m => m.Status == SiloStatus.Active).Select(m => m.Name).ToHashSet(StringComparer.Ordinal);

    private Task Run(Action feed)
    {
        feed();
        Carry();
        return Task.CompletedTask;
    }

    /// <summary>Carries out the core's effects; none is awaited here, so no call holds up the next event.</summary>
    private void Carry()
    {
        foreach (var effect in _core.TakeEffects())
        {
            _ = effect switch
            {
                SendToRunner send => SendAsync(send),
                NotifyStarted started => Tell(started.RequestId, r => r.StartedAsync(started.RunnerId, started.HintHit, started.Attempt)),
                NotifyRequeued requeued => Requeue(requeued),
                FailRequest fail => Tell(fail.Ticket.RequestId, r => r.CompleteAsync(
                    new InferenceResult(fail.Ticket.RequestId, null, new RequestError(fail.Code, fail.Message), null, HintHit: false) { RunnerId = fail.RunnerId })),
                ConfirmRunner confirm => ConfirmAsync(confirm.RunnerId),
                AskRunner ask => AskAsync(ask),
                PrewarmRunner prewarm => PrewarmRunnerAsync(prewarm),
                WakeAt wake => Wake(wake.When),
                RunnerDropped dropped => Logged(() => LogRunnerLost(logger, dropped.RunnerId, AppId, dropped.Reason, dropped.Requests)),
                CompletionUnreported unreported => Logged(() => LogCompletionUnreported(logger, unreported.RequestId, unreported.RunnerId)),
                RequestMissing missing => Logged(() => LogRequestMissing(logger, missing.RequestId, missing.RunnerId)),
                PolicyPrewarmsOff off => Logged(() => LogPolicyPrewarmsOff(logger, AppId, off.RunnerId, off.Hint, off.Reason)),
                _ => throw new InvalidOperationException($"The router cannot carry out {effect}."),
            };
        }
    }

    private async Task SendAsync(SendToRunner send)
    {
        var (request, ticket) = (send.Sent, send.Sent.Ticket);
        metrics.Dispatched(AppId, ticket.Request.Hint is not null, send.HintHit, send.Waited);
        long acceptedAfter;
        try
        {
            acceptedAfter = await runners.Get(request.RunnerId).DispatchAsync(
                new RunnerInvocation(ticket.RequestId, AppId, ticket.Request.InputJson, ticket.Request.Path, request.Attempt, send.HintHit));
        }
        catch (Exception ex)
        {
            LogDispatchFailed(logger, ex, request.RunnerId, ticket.RequestId, request.Attempt);
            await Run(() => _core.DispatchFailed(send, ex.GetBaseException().Message, time.GetUtcNow()));
            return;
        }

        await Run(() => _core.DispatchSucceeded(send, acceptedAfter));
    }

    private Task Requeue(NotifyRequeued requeued)
    {
        metrics.Retried(AppId);
        return Tell(requeued.RequestId, r => r.RequeuedAsync(requeued.RunnerId, requeued.Attempts, requeued.Reason));
    }

    private async Task Tell(string requestId, Func<IRequestGrain, Task> call)
    {
        try
        {
            await call(requests.Get(requestId));
        }
        catch (Exception ex)
        {
            LogRequestUnreachable(logger, ex, requestId);
        }
    }

    private async Task ConfirmAsync(string runnerId)
    {
        HintsEvent? current = null;
        try
        {
            var status = await runners.Get(runnerId).GetStatusAsync();
            current = status.Apps.FirstOrDefault(a => a.AppId == AppId);
        }
        catch (Exception ex)
        {
            LogConfirmFailed(logger, ex, runnerId);
        }

        await Run(() => _core.RunnerConfirmed(runnerId, current, time.GetUtcNow()));
    }

    private async Task AskAsync(AskRunner ask)
    {
        var (runnerId, requestId) = (ask.Request.RunnerId, ask.Request.Ticket.RequestId);
        RunnerAnswer answer;
        try
        {
            answer = await runners.Get(runnerId).IsRunningAsync(requestId) ? new(RunnerAnswerKind.Running)
                : ask.Audit && (await requests.Get(requestId).GetStatusAsync()).State == RequestState.Completed ? new(RunnerAnswerKind.Completed)
                : new(RunnerAnswerKind.Gone);
        }
        catch (Exception ex)
        {
            LogCheckFailed(logger, ex, runnerId, requestId);
            answer = new(RunnerAnswerKind.Unreachable, ex.GetBaseException().Message);
        }

        await Run(() => _core.RunnerAnswered(ask, answer, time.GetUtcNow()));
    }

    private async Task<bool> PrewarmRunnerAsync(PrewarmRunner prewarm)
    {
        var (runnerId, hint) = (prewarm.Prewarm.RunnerId, prewarm.Prewarm.Hint);
        RunnerResponse? response = null;
        try
        {
            response = await runners.Get(runnerId).PrewarmAsync(AppId, hint);
            if (response.Error is { } error)
            {
                LogPrewarmFailed(logger, null, runnerId, hint, error.Message);
            }
        }
        catch (Exception ex)
        {
            LogPrewarmFailed(logger, ex, runnerId, hint, ex.Message);
        }

        var loaded = _core.PrewarmAnswered(prewarm.Prewarm, prewarm.ForPolicy, response?.Hints, response?.Error, time.GetUtcNow());
        Carry();
        return loaded;
    }

    private Task Wake(DateTimeOffset when)
    {
        var now = time.GetUtcNow();
        _wake?.Dispose();
        _wake = this.RegisterGrainTimer(_ => Run(() => _core.Wake(time.GetUtcNow())),
            new GrainTimerCreationOptions(when > now ? when - now : TimeSpan.Zero, Timeout.InfiniteTimeSpan) { Interleave = true });
        return Task.CompletedTask;
    }

    private static Task Logged(Action log)
    {
        log();
        return Task.CompletedTask;
    }
}
