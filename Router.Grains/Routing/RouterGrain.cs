using FalHints.Client.Contracts;
using FalHints.Router.Hints;
using FalHints.Router.Placement;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Concurrency;
using Orleans.Streams;

namespace FalHints.Router.Routing;

/// <summary>
/// The router of one app: it keeps the hint index from the runners' events and places each request on a
/// runner at once (a hint match when one is free, else any free runner), queueing only when no runner is
/// free. Hints never hold a request back.
/// </summary>
[Reentrant]
[ImplicitStreamSubscription(HintStream.Namespace)]
public sealed partial class RouterGrain(
    IPlacementPolicy policy,
    IOptions<RouterOptions> options,
    TimeProvider time,
    ILogger<RouterGrain> logger) : Grain, IRouterGrain
{
    private readonly HintIndex _index = new();
    private readonly LinkedList<PendingRequest> _queue = new();
    private long _hits;
    private long _misses;

    /// <inheritdoc />
    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        var stream = this.GetStreamProvider(HintStream.ProviderName)
            .GetStream<HintsEvent>(StreamId.Create(HintStream.Namespace, this.GetPrimaryKeyString()));
        await stream.SubscribeAsync((hints, _) =>
        {
            OnHints(hints);
            return Task.CompletedTask;
        });

        var sweep = TimeSpan.FromSeconds(1);
        this.RegisterGrainTimer(ExpireUndiscoveredAsync, new GrainTimerCreationOptions(sweep, sweep) { Interleave = true });
    }

    /// <inheritdoc />
    public async Task<InferenceResult> SubmitAsync(InferenceRequest request)
    {
        var appId = this.GetPrimaryKeyString();
        if (!string.Equals(request.AppId, appId, StringComparison.Ordinal))
        {
            return Failed(request, ErrorCodes.InvalidInput, $"Request for app '{request.AppId}' was sent to the router of '{appId}'.");
        }

        var pending = new PendingRequest(request, time.GetUtcNow());
        _queue.AddLast(pending);
        Pump();
        return await pending.Completion.Task;
    }

    /// <inheritdoc />
    public Task<RouterSnapshot> GetSnapshotAsync() =>
        Task.FromResult(new RouterSnapshot(this.GetPrimaryKeyString(), _index.Snapshot(), _queue.Count, _hits, _misses));

    private void OnHints(HintsEvent hints)
    {
        if (string.Equals(hints.AppId, this.GetPrimaryKeyString(), StringComparison.Ordinal) && _index.Apply(hints))
        {
            Pump();
        }
    }

    /// <summary>Places queued requests, oldest first, until no runner is free.</summary>
    private void Pump()
    {
        while (_queue.First is { } head)
        {
            if (policy.Choose(head.Value.Request.Hint, _index.Views()) is not { } decision)
            {
                return;
            }

            _queue.RemoveFirst();
            _index.MarkDispatched(decision.RunnerId, head.Value.Request.Hint);
            _ = RunAsync(head.Value, decision);
        }
    }

    private async Task RunAsync(PendingRequest pending, PlacementDecision decision)
    {
        var request = pending.Request;
        if (request.Hint is not null)
        {
            _ = decision.HintHit ? ++_hits : ++_misses;
        }

        try
        {
            var runner = GrainFactory.GetGrain<IRunnerGrain>(decision.RunnerId);
            var response = await runner.InvokeAsync(new RunnerInvocation(request.RequestId, request.AppId, request.InputJson, request.Path));
            _index.Apply(response.Hints);
            pending.Completion.TrySetResult(new InferenceResult(request.RequestId, response.OutputJson, response.Error, decision.RunnerId, decision.HintHit));
        }
        catch (Exception ex)
        {
            // The runner (or its silo) failed, not the app: forget it until it announces itself again, and retry.
            _index.Remove(decision.RunnerId);
            pending.Attempts++;
            LogRunnerFailed(logger, ex, decision.RunnerId, request.RequestId, pending.Attempts, options.Value.MaxAttempts);
            if (pending.Attempts < options.Value.MaxAttempts)
            {
                _queue.AddFirst(pending);
            }
            else
            {
                pending.Completion.TrySetResult(Failed(request, ErrorCodes.RunnerFailed,
                    $"The request failed on {pending.Attempts} runners; last: {decision.RunnerId}: {ex.Message}") with { RunnerId = decision.RunnerId });
            }
        }
        finally
        {
            _index.MarkCompleted(decision.RunnerId);
            Pump();
        }
    }

    private Task ExpireUndiscoveredAsync(CancellationToken cancellationToken)
    {
        if (_index.Count > 0)
        {
            return Task.CompletedTask;
        }

        var deadline = time.GetUtcNow() - options.Value.DiscoveryTimeout;
        for (var node = _queue.First; node is not null;)
        {
            var next = node.Next;
            if (node.Value.EnqueuedAt <= deadline)
            {
                _queue.Remove(node);
                node.Value.Completion.TrySetResult(Failed(node.Value.Request, ErrorCodes.AppNotFound,
                    $"No runner serves app '{node.Value.Request.AppId}': none announced itself within {options.Value.DiscoveryTimeout.TotalSeconds:0} s."));
            }

            node = next;
        }

        return Task.CompletedTask;
    }

    private static InferenceResult Failed(InferenceRequest request, string code, string message) =>
        new(request.RequestId, null, new RequestError(code, message), null, HintHit: false);

    private sealed class PendingRequest(InferenceRequest request, DateTimeOffset enqueuedAt)
    {
        public InferenceRequest Request { get; } = request;

        public DateTimeOffset EnqueuedAt { get; } = enqueuedAt;

        public TaskCompletionSource<InferenceResult> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public int Attempts { get; set; }
    }
}
