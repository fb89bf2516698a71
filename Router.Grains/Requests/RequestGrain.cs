using System.Diagnostics.CodeAnalysis;
using FalHints.Client.Contracts;
using FalHints.Router.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Concurrency;
using Orleans.Storage;

namespace FalHints.Router.Requests;

/// <summary>
/// One request: its state lives in grain storage, so it survives its router's reactivation. A request placed on a
/// runner when it is submitted is stored once, accepted and started together; one that waits in the queue is stored
/// again when it starts; its outcome is stored when it ends. One submitted with submit-and-wait is stored only when it
/// ends, or when the call answers before it ends (see <see cref="SubmitAndWaitAsync"/>). Until it completes it
/// reminds its router of itself every <see cref="RouterOptions.ResumeInterval"/>; the first completion reported wins;
/// a completed request's status and result are kept for <see cref="RouterOptions.ResultRetention"/>.
/// </summary>
[Reentrant]
[SuppressMessage("Design", "CA1001", Justification = "A SemaphoreSlim whose wait handle is never used holds nothing to dispose.")]
public sealed partial class RequestGrain(
    [PersistentState("request", RequestStorage.Name)] IPersistentState<RequestRecord> record,
    IOptions<RouterOptions> options,
    IHostApplicationLifetime lifetime,
    RequestStoreLosses storeLosses,
    GrainReferences<IRouterGrain> routers,
    TimeProvider time,
    ILogger<RequestGrain> logger) : Grain, IRequestGrain
{
    private const int MaxLogLines = 100;

    // What a finished request keeps of its input.
    private const string FinishedInput = "{}";
    private static readonly TimeSpan MaxWait = TimeSpan.FromSeconds(25);

    // While the silo stops, a long wait would hold up the deactivation of this grain, and so the silo's exit.
    private static readonly TimeSpan MaxWaitWhileStopping = TimeSpan.FromSeconds(1);
    private readonly TaskCompletionSource _completed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    // The grain is reentrant: writes must not overlap, or the second fails its ETag check.
    private readonly SemaphoreSlim _writes = new(1, 1);
    private IGrainTimer? _resume;
    private IGrainTimer? _webhook;
    private IRouterGrain? _router;

    // A completion held in memory whose write has not succeeded yet.
    private bool _completionUnstored;

    // Whether the record has been written (or read) at least once: until then only a waiting caller knows of it.
    private bool _stored;

    // Whether a write of the record has begun: a transition that comes while the first write runs is written after it.
    private bool _storing;

    // The store losses this activation has written its record back after (see RequestStoreLosses).
    private int _storeLossesSeen;

    private RequestRecord State => record.State;

    /// <inheritdoc />
    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _storeLossesSeen = storeLosses.Count;
        if (State.Request is null)
        {
            return;
        }

        _stored = true;
        if (State.State == RequestState.Completed)
        {
            _completed.TrySetResult();
            await ScheduleExpiryAsync();
            ScheduleWebhook(TimeSpan.Zero);
        }
        else
        {
            // At once, not at the first tick: after a restart the router learns of its requests in the order they activate.
            await ResumeAsync(cancellationToken);
            StartResuming();
        }
    }

    /// <inheritdoc />
    public Task<RequestStatus> SubmitAsync(InferenceRequest request) => SubmitCoreAsync(request, storeNow: true);

    private async Task<RequestStatus> SubmitCoreAsync(InferenceRequest request, bool storeNow)
    {
        if (State.Request is not null)
        {
            // A request only a waiting submit-and-wait call knows of is stored before a submission that promises it hears of it.
            if (storeNow && !_stored)
            {
                await SaveAsync();
            }

            return await GetStatusAsync();
        }

        var now = time.GetUtcNow();
        var refused = !AppIds.TryValidate(request.AppId, out var why) || !Client.Contracts.Hints.TryValidate(request, out why);
        State.Request = request;
        State.AcceptedAt = now;
        State.State = RequestState.Queued;
        if (refused)
        {
            // Refused in the caller's answer: no webhook is owed.
            State.WebhookDone = true;
            await CompleteAsync(new InferenceResult(request.RequestId, null, new RequestError(ErrorCodes.InvalidInput, why!), null, HintHit: false));
            return Status(null);
        }

        Log(request.Hint is null ? "accepted without a hint" : $"accepted with hint '{request.Hint}'");

        // Enqueued before it is stored, so that a request placed at once is stored once, accepted and started. The
        // caller hears of it only once it is stored; if the write fails, the router forgets it and a retried
        // submission (the same id) finds it running or queues it afresh.
        EnqueueResult accepted;
        try
        {
            accepted = await Router.EnqueueAsync(new RequestTicket(request, now));
        }
        catch (Exception ex)
        {
            // Stored below; the resume timer hands it to the router once it answers.
            LogRouterUnreachable(logger, ex, request.RequestId, request.AppId);
            accepted = new EnqueueResult(RequestState.Queued, null, null);
        }

        if (accepted.Error is { } error)
        {
            State.WebhookDone = true;
            await CompleteAsync(new InferenceResult(request.RequestId, null, error, null, HintHit: false));
            return Status(null);
        }

        if (accepted.DeclaredHint is { } declared)
        {
            Log($"routed with hint '{declared}' from the app's hint field");
        }

        // Its runner may have finished it already (the completion is then stored); a notice of a lost attempt may too.
        if (accepted.RunnerId is { } runnerId && State.State == RequestState.Queued && State.Attempts < accepted.Attempt)
        {
            Started(runnerId, accepted.HintHit, accepted.Attempt);
        }

        if (storeNow)
        {
            await StoreFirstAsync(request);
        }

        if (State.State != RequestState.Completed)
        {
            StartResuming();
        }

        return Status(State.State == RequestState.Queued ? accepted.QueuePosition : null);
    }

    /// <inheritdoc />
    /// <remarks>
    /// Until this call answers, nobody but its caller knows of the request (unless it has a webhook): should this node
    /// fail meanwhile, the call fails and the caller, holding no request id, submits again. So the request is stored
    /// only when it ends or, if it has not ended when the call answers, before the call answers: a request that
    /// completes within the call costs one write, not one for its acceptance, one for its start and one for its end.
    /// </remarks>
    public async Task<RequestStatus> SubmitAndWaitAsync(InferenceRequest request, TimeSpan maxWait)
    {
        var submitted = await SubmitCoreAsync(request, storeNow: request.Options?.Webhook is not null);
        if (submitted.State == RequestState.Completed)
        {
            return submitted;
        }

        var waited = await WaitAsync(maxWait);
        if (waited.State == RequestState.Completed || _stored)
        {
            return waited;
        }

        // The caller learns of a request still queued or running: from now on it must outlive this node.
        await StoreFirstAsync(request);

        return Status(waited.QueuePosition);
    }

    /// <inheritdoc />
    public async Task<RequestStatus> GetStatusAsync()
    {
        if (State.Request is null)
        {
            return NotFound();
        }

        await RestoreIfStoreLostAsync();

        int? position = null;
        if (State.State == RequestState.Queued)
        {
            try
            {
                position = await Router.GetPositionAsync(State.Request.RequestId);
            }
            catch (Exception ex)
            {
                LogRouterUnreachable(logger, ex, State.Request.RequestId, State.Request.AppId);
            }
        }

        return Status(position);
    }

    /// <inheritdoc />
    public async Task<RequestStatus> WaitAsync(TimeSpan maxWait)
    {
        if (State.Request is null)
        {
            return NotFound();
        }

        var wait = maxWait < TimeSpan.Zero ? TimeSpan.Zero : maxWait > MaxWait ? MaxWait : maxWait;
        var stopping = lifetime.ApplicationStopping;
        var delay = stopping.IsCancellationRequested
            ? Task.Delay(wait < MaxWaitWhileStopping ? wait : MaxWaitWhileStopping, time)
            : Task.Delay(wait, time, stopping);
        await Task.WhenAny(_completed.Task, delay);
        return await GetStatusAsync();
    }

    /// <inheritdoc />
    public async Task<RequestStatus> CancelAsync()
    {
        if (State.Request is not { } request)
        {
            return NotFound();
        }

        if (State.State == RequestState.Completed)
        {
            return Status(null);
        }

        State.CancelRequested = true;
        if (State.State == RequestState.Queued)
        {
            // Whether the router still had it queued or not, it never starts now: a start that races with
            // this cancel is signalled to its runner in StartedAsync.
            await Router.CancelAsync(request.RequestId);
            await CompleteAsync(new InferenceResult(request.RequestId, null,
                new RequestError(ErrorCodes.Cancelled, "The request was cancelled while queued."), null, HintHit: false));
        }
        else if (State.RunnerId is { } runnerId)
        {
            Log($"cancellation requested; signalling runner {runnerId}");
            await SaveAsync();
            await GrainFactory.GetGrain<IRunnerGrain>(runnerId).CancelAsync(request.RequestId);
        }

        return Status(null);
    }

    /// <inheritdoc />
    public async Task StartedAsync(string runnerId, bool hintHit, int attempt)
    {
        if (State.CancelRequested)
        {
            await GrainFactory.GetGrain<IRunnerGrain>(runnerId).CancelAsync(State.Request!.RequestId);
        }

        // A start reported late, after a later attempt has already started, is stale.
        if (State.State == RequestState.Completed || attempt < State.Attempts)
        {
            return;
        }

        Started(runnerId, hintHit, attempt);
        await SaveIfStoredAsync();
    }

    /// <inheritdoc />
    public async Task RequeuedAsync(string lostRunnerId, int lostAttempt, string reason)
    {
        // The router may restart the request (on another runner, or the same one) before this notice arrives: the
        // notice is still logged (it explains the next attempt) but must not undo the newer start or the completion.
        if (State.Request is null)
        {
            return;
        }

        if (State.State != RequestState.Completed && State.Attempts <= lostAttempt && string.Equals(State.RunnerId, lostRunnerId, StringComparison.Ordinal))
        {
            State.State = RequestState.Queued;
            State.RunnerId = null;
        }

        Log(reason);
        await SaveIfStoredAsync();
    }

    /// <inheritdoc />
    public async Task CompleteAsync(InferenceResult result)
    {
        if (State.Request is null)
        {
            return;
        }

        if (State.State == RequestState.Completed)
        {
            // A completion whose write failed is written when it is reported again (a runner tries again).
            if (_completionUnstored)
            {
                await StoreCompletionAsync();
            }

            return;
        }

        // The result may arrive before the router's notice that this attempt started (which is then dropped): the
        // result's runner is the one that served it, so the status and the log name it either way.
        if (result.RunnerId is { } runnerId && (!string.Equals(State.RunnerId, runnerId, StringComparison.Ordinal) || State.Attempts < result.Attempt))
        {
            Log($"started on runner {runnerId} (attempt {result.Attempt}, hint {(result.HintHit ? "hit" : "missed")})");
            State.RunnerId = runnerId;
            State.HintHit = result.HintHit;
        }

        State.State = RequestState.Completed;
        State.Result = result with
        {
            RunnerId = result.RunnerId ?? State.RunnerId,
            HintHit = result.RunnerId is null ? State.HintHit : result.HintHit,
        };
        State.Attempts = Math.Max(State.Attempts, result.Attempt);
        State.CompletedAt = time.GetUtcNow();

        // The input is needed no more: a finished request keeps only its result, so a large body costs memory and
        // storage only while the request is queued or running.
        State.Request = State.Request with { InputJson = FinishedInput };
        Log(result.Error is { } error ? $"failed: {error.Code}: {error.Message}" : "completed");

        // A caller waiting for the result has it once the write is done, or has failed (the runner that reported it hears
        // of the failure, and the resume timer writes it later). Not sooner: the runner tells the router its slot is
        // free only after this returns, and a caller woken first could send its next request before the router knows
        // the runner holding its model is free, and so miss it.
        try
        {
            await StoreCompletionAsync();
        }
        finally
        {
            _completed.TrySetResult();
        }
    }

    private async Task StoreCompletionAsync()
    {
        _completionUnstored = true;
        await SaveAsync();
        if (!_completionUnstored)
        {
            // Stored meanwhile, by a report of the same completion that came in while this write waited.
            return;
        }

        _completionUnstored = false;
        _resume?.Dispose();
        _resume = null;
        await ScheduleExpiryAsync();
        ScheduleWebhook(TimeSpan.Zero);
    }

    private IRouterGrain Router => _router ??= routers.Get(State.Request!.AppId);

    private void Started(string runnerId, bool hintHit, int attempt)
    {
        State.State = RequestState.InProgress;
        State.RunnerId = runnerId;
        State.HintHit = hintHit;
        State.Attempts = attempt;
        Log($"started on runner {runnerId} (attempt {attempt}, hint {(hintHit ? "hit" : "missed")})");
    }

    /// <summary>
    /// The request's first write. Should it fail, the request is not accepted: it is forgotten (<see cref="ForgetAsync"/>)
    /// and the caller hears why, so a retried submission starts afresh instead of finding a request nobody stored, and no
    /// caller gets an error for a request that goes on.
    /// </summary>
    private async Task StoreFirstAsync(InferenceRequest request)
    {
        try
        {
            await SaveAsync();
        }
        catch
        {
            await ForgetAsync(request);
            throw;
        }
    }

    /// <summary>Forgets a request that could not be stored: the record this activation holds, its resume timer and its place at the router (one already running runs on, unanswered).</summary>
    private async Task ForgetAsync(InferenceRequest request)
    {
        record.State = new RequestRecord();
        _storing = false;
        _resume?.Dispose();
        _resume = null;
        try
        {
            await GrainFactory.GetGrain<IRouterGrain>(request.AppId).CancelAsync(request.RequestId);
        }
        catch (Exception ex)
        {
            LogRouterUnreachable(logger, ex, request.RequestId, request.AppId);
        }
    }

    /// <summary>Tries the webhook after <paramref name="delay"/>, if one is owed and this node can post it.</summary>
    private void ScheduleWebhook(TimeSpan delay)
    {
        if (!State.WebhookPending || _webhook is not null || ServiceProvider.GetService<IWebhookDelivery>() is not { } delivery)
        {
            return;
        }

        // Kept alive while it waits: the attempts are stored, so a node that stops hands the rest to the next activation.
        _webhook = this.RegisterGrainTimer(_ => AttemptWebhookAsync(delivery), new GrainTimerCreationOptions(delay, Timeout.InfiniteTimeSpan)
        {
            Interleave = true,
            KeepAlive = true,
        });
    }

    private async Task AttemptWebhookAsync(IWebhookDelivery delivery)
    {
        _webhook?.Dispose();
        _webhook = null;
        if (!State.WebhookPending)
        {
            return;
        }

        var failure = await delivery.DeliverAsync(State.Result!, State.Request!.Options!.Webhook!, CancellationToken.None);
        State.WebhookAttempts++;
        var attempts = State.WebhookAttempts;
        if (failure is null || attempts >= delivery.MaxAttempts)
        {
            State.WebhookDone = true;
            Log(failure is null ? $"webhook delivered (attempt {attempts})" : $"webhook given up after {attempts} attempts; the last failed: {failure}");
        }
        else
        {
            Log($"webhook attempt {attempts} failed ({failure}); trying again in {delivery.DelayAfter(attempts).TotalSeconds:0.#} s");
        }

        await SaveAsync();
        if (!State.WebhookDone)
        {
            ScheduleWebhook(delivery.DelayAfter(attempts));
        }
    }

    private void StartResuming()
    {
        var interval = options.Value.ResumeInterval;
        _resume ??= this.RegisterGrainTimer(ResumeAsync, new GrainTimerCreationOptions(interval, interval) { Interleave = true, KeepAlive = true });
    }

    private async Task ResumeAsync(CancellationToken cancellationToken)
    {
        if (State.Request is not { } request)
        {
            return;
        }

        if (State.State == RequestState.Completed)
        {
            if (_completionUnstored)
            {
                await StoreCompletionWhileResumingAsync(request);
            }

            return;
        }

        await RestoreIfStoreLostAsync();
        try
        {
            await Router.ResumeAsync(new RequestTicket(request, State.AcceptedAt), State.State, State.RunnerId, State.Attempts);
        }
        catch (Exception ex)
        {
            LogRouterUnreachable(logger, ex, request.RequestId, request.AppId);
        }
    }

    /// <summary>Writes a completion whose write failed, at each tick of the resume timer until it is stored.</summary>
    private async Task StoreCompletionWhileResumingAsync(InferenceRequest request)
    {
        try
        {
            await StoreCompletionAsync();
            LogCompletionStored(logger, request.RequestId);
        }
        catch (Exception ex)
        {
            LogCompletionUnstored(logger, ex, request.RequestId);
        }
    }

    private async Task ScheduleExpiryAsync()
    {
        var left = State.CompletedAt!.Value + options.Value.ResultRetention - time.GetUtcNow();
        if (left <= TimeSpan.Zero)
        {
            await ExpireAsync(CancellationToken.None);
            return;
        }

        this.RegisterGrainTimer(ExpireAsync, new GrainTimerCreationOptions(left, Timeout.InfiniteTimeSpan) { Interleave = true });
    }

    private async Task SaveAsync()
    {
        _storing = true;
        await _writes.WaitAsync();
        try
        {
            await WriteOrRestoreAsync();
            _stored = true;
        }
        finally
        {
            _writes.Release();
        }
    }

    /// <summary>Writes a transition of a request already in the store; one only its waiting caller knows of is written when that call answers.</summary>
    private Task SaveIfStoredAsync() => _stored || _storing ? SaveAsync() : Task.CompletedTask;

    /// <summary>
    /// Writes the record. If the store no longer has it (Redis emptied by a flush, or restarted without persistence),
    /// the write's version check fails: the record this activation holds is then written back whole, so the request
    /// outlives the loss instead of answering <c>request_not_found</c> at its next activation.
    /// </summary>
    private async Task WriteOrRestoreAsync()
    {
        try
        {
            await record.WriteStateAsync();
        }
        catch (InconsistentStateException ex)
        {
            var held = record.State;
            await record.ReadStateAsync();
            if (record.RecordExists)
            {
                // Another writer's record, not a loss: it wins.
                throw;
            }

            record.State = held;
            await record.WriteStateAsync();
            LogRecordRestored(logger, ex, this.GetPrimaryKeyString());
        }
    }

    /// <summary>After the node has seen its store emptied, writes this request's record back once.</summary>
    private async Task RestoreIfStoreLostAsync()
    {
        var losses = storeLosses.Count;
        if (losses != _storeLossesSeen && State.Request is not null)
        {
            _storeLossesSeen = losses;
            await SaveAsync();
        }
    }

    private async Task ExpireAsync(CancellationToken cancellationToken)
    {
        await _writes.WaitAsync(cancellationToken);
        try
        {
            await record.ClearStateAsync(cancellationToken);
        }
        finally
        {
            _writes.Release();
        }

        record.State = new RequestRecord();
        this.DeactivateOnIdle();
    }

    private void Log(string message)
    {
        State.Logs.Add(new RequestLog(time.GetUtcNow(), message));
        if (State.Logs.Count > MaxLogLines)
        {
            State.Logs.RemoveRange(0, State.Logs.Count - MaxLogLines);
        }
    }

    private RequestStatus Status(int? position) => new(
        State.Request!.RequestId, State.Request.AppId, State.State, position, State.RunnerId, State.HintHit,
        State.Attempts, State.Result, [.. State.Logs]);

    private RequestStatus NotFound()
    {
        // An unknown id costs no memory beyond this answer, however many are asked for.
        this.DeactivateOnIdle();
        var id = this.GetPrimaryKeyString();
        return new RequestStatus(id, string.Empty, RequestState.Completed, null, null, false, 0,
            new InferenceResult(id, null, new RequestError(ErrorCodes.RequestNotFound, $"No request '{id}' is known; it was never submitted or its result has expired."), null, false),
            []);
    }
}
