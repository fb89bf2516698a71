using System.Collections.Immutable;
using System.Diagnostics.CodeAnalysis;
using FalHints.Client.Contracts;
using FalHints.Client.Requests;
using FalHints.Runner.Apps;
using FalHints.Runner.Devices;
using FalHints.Runner.Hosting;
using FalHints.Runner.Metrics;
using FalHints.Runner.Models;
using FalHints.Runner.Pipelines;
using FalHints.Runner.Placement;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Concurrency;
using Orleans.Placement;

namespace FalHints.Runner.Runners;

/// <summary>
/// A runner on one device of one silo, pinned there. It hosts one instance of each registered app and one
/// pipeline cache for the device, runs tensor work on the device's thread and, after every response
/// (success or failure), publishes what each app holds on the hint stream. It also publishes on start, as a
/// heartbeat and when it stops.
/// </summary>
[SiloPinnedPlacement]
[Immovable]
[Reentrant]
[SuppressMessage("Design", "CA1001", Justification = "A grain releases its pipelines in OnDeactivateAsync, on the device thread.")]
public sealed partial class RunnerGrain(
    IServiceProvider services,
    ILocalSiloDetails localSilo,
    ModelStore models,
    DeviceExecutors executors,
    IOptions<RunnerOptions> options,
    RunnerMetrics metrics,
    GrainReferences<IRequestGrain> requests,
    TimeProvider time,
    ILogger<RunnerGrain> logger) : Grain, IRunnerGrain
{
    // Tries per completion report, and the pause between them.
    internal const int ReportAttempts = 3;
    private static readonly TimeSpan ReportRetryDelay = TimeSpan.FromSeconds(1);

    private readonly Dictionary<string, HostedApp> _apps = new(StringComparer.Ordinal);
    private readonly Dictionary<string, CancellationTokenSource> _running = new(StringComparer.Ordinal);

    // Dispatched requests from acceptance until their completion has been reported.
    private readonly HashSet<string> _accepted = new(StringComparer.Ordinal);
    private PipelineCache? _pipelines;
    private RunnerKey _key;
    private long _sequence;
    private HintPublisher? _publisher;
    private int _unreported;
    private bool _draining;

    /// <inheritdoc />
    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        var id = this.GetPrimaryKeyString();
        if (!RunnerKey.TryParse(id, out var key) || !string.Equals(key.Value.Silo, localSilo.Name, StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"Runner '{id}' cannot be activated on silo '{localSilo.Name}'.");
        }

        _key = key.Value;
        // Sequence numbers must keep growing across reactivations; start from the clock.
        _sequence = time.GetUtcNow().ToUnixTimeMilliseconds() * 1000;
        var executor = executors.For(_key.Device);
        var device = _key.Device;
        var settings = options.Value;
        var gpuRunners = RunnerStarter.ResolveDevices(settings).Count(d => d.StartsWith("cuda:", StringComparison.Ordinal));
        var hostBudget = settings.HostBudgetFor(device, gpuRunners, GC.GetGCMemoryInfo().TotalAvailableMemoryBytes);
        _pipelines = new PipelineCache(settings.BudgetFor(device, DeviceMemory.TotalBytes(device)), executor, time, load => metrics.Loaded(device, load), hostBudget);
        foreach (var registration in services.GetServices<FalAppRegistration>())
        {
            var app = registration.Create(services);
            await app.SetupAsync(new RunnerContext(id, _key.Device, executor, models, _pipelines.For(app.AppId), settings.WeightLoader), cancellationToken);
            _apps.Add(app.AppId, new HostedApp(app, GrainFactory.GetGrain<IRouterGrain>(app.AppId)));
        }

        this.RegisterGrainTimer(HeartbeatAsync, new GrainTimerCreationOptions(options.Value.HeartbeatInterval, options.Value.HeartbeatInterval)
        {
            Interleave = true,
            KeepAlive = true,
        });
        LogActivated(logger, id, _apps.Count, _pipelines.BudgetBytes, _pipelines.HostBudgetBytes);
    }

    /// <inheritdoc />
    public async Task StartAsync()
    {
        foreach (var hosted in _apps.Values)
        {
            await PublishAsync(NextEvent(hosted.App.AppId, hosted, HintsEventKind.Started));
        }
    }

    /// <inheritdoc />
    public Task<long> DispatchAsync(RunnerInvocation invocation)
    {
        _unreported++;
        _accepted.Add(invocation.RequestId);
        var acceptedAfter = _sequence;
        _ = RunAndReportAsync(invocation);
        return Task.FromResult(acceptedAfter);
    }

    /// <inheritdoc />
    public Task<RunnerResponse> InvokeAsync(RunnerInvocation invocation) => RunAndPublishAsync(invocation);

    /// <inheritdoc />
    public Task CancelAsync(string requestId)
    {
        if (_running.TryGetValue(requestId, out var cancellation))
        {
            cancellation.Cancel();
        }

        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public async Task<RunnerResponse> PrewarmAsync(string appId, string hint)
    {
        if (!_apps.TryGetValue(appId, out var hosted))
        {
            var missing = new RequestError(ErrorCodes.AppNotFound, $"Runner '{_key}' does not serve app '{appId}'.");
            return new RunnerResponse(null, missing, NextEvent(appId, null, HintsEventKind.Response));
        }

        var (_, error) = await RunGuardedAsync(hosted, $"prewarm:{Guid.NewGuid():N}", async token =>
        {
            await hosted.App.PrewarmAsync(hint, token);
            return null;
        });
        var hints = NextEvent(appId, hosted, HintsEventKind.Response);
        await PublishAsync(hints);
        return new RunnerResponse(null, error, hints);
    }

    /// <inheritdoc />
    public async Task DrainAsync()
    {
        if (_draining)
        {
            return;
        }

        _draining = true;
        foreach (var hosted in _apps.Values)
        {
            await PublishAsync(NextEvent(hosted.App.AppId, hosted, HintsEventKind.Draining));
        }

        LogDraining(logger, _key.ToString(), _running.Count);
    }

    /// <inheritdoc />
    public Task<bool> IsRunningAsync(string requestId) => Task.FromResult(_accepted.Contains(requestId) || _running.ContainsKey(requestId));

    /// <inheritdoc />
    public Task<RunnerStatus> GetStatusAsync() => Task.FromResult(new RunnerStatus(
        _key.ToString(),
        localSilo.Name,
        // Numbered as a new state: requests and loads that started since the last published event are in it, so a
        // router that holds that event (it may have waited in the stream) must take this answer as newer.
        [.. _apps.Values.Select(h => NextEvent(h.App.AppId, h, _draining ? HintsEventKind.Draining : HintsEventKind.Heartbeat))],
        _unreported));

    /// <inheritdoc />
    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        // A runner that drained has told routers already; its silo may be leaving the cluster by now.
        var announced = _draining;
        _draining = true;
        foreach (var hosted in _apps.Values)
        {
            if (!announced)
            {
                await PublishAsync(NextEvent(hosted.App.AppId, hosted, HintsEventKind.Draining));
            }

            await hosted.App.TeardownAsync(cancellationToken);
        }

        if (_pipelines is { } pipelines)
        {
            await executors.For(_key.Device).RunAsync(pipelines.Dispose, CancellationToken.None);
        }
    }

    /// <summary>
    /// Runs a dispatched request, then completes its request grain and, once the request has its result, tells the
    /// app's router (one-way). A request that could not be told is left for the router to find: its check of requests
    /// in flight sees that this runner no longer has it, and retries it.
    /// </summary>
    private async Task RunAndReportAsync(RunnerInvocation invocation)
    {
        RunnerResponse response;
        try
        {
            response = await RunAndPublishAsync(invocation);
        }
        catch (Exception ex)
        {
            // Never leave a request unreported, whatever went wrong around the app.
            LogAppFailed(logger, ex, invocation.AppId, invocation.RequestId, _key.ToString());
            response = new RunnerResponse(null, new RequestError(ErrorCodes.AppError, $"The runner failed around the app: {ex.GetType().Name}: {ex.Message}"),
                NextEvent(invocation.AppId, null, HintsEventKind.Response) with { RequestId = invocation.RequestId });
        }

        // A hint that named a model gone from the store was no hit, whatever the router saw when it placed the request.
        var hintHit = invocation.HintHit && response.Error?.Code != ErrorCodes.ModelNotFound;
        var result = new InferenceResult(invocation.RequestId, response.OutputJson, response.Error, _key.ToString(), hintHit, invocation.Attempt);
        try
        {
            if (await CompleteRequestAsync(result))
            {
                await (_apps.TryGetValue(invocation.AppId, out var hosted) ? hosted.Router : GrainFactory.GetGrain<IRouterGrain>(invocation.AppId))
                    .CompletedAsync(invocation.RequestId, response.Hints);
            }
        }
        catch (Exception ex)
        {
            // A one-way call fails only here, on this side; the router's check frees the slot.
            LogReportFailed(logger, ex, invocation.RequestId, "router");
        }
        finally
        {
            _unreported--;
            _accepted.Remove(invocation.RequestId);
        }
    }

    /// <summary>
    /// Sends the result to the request grain, trying again while the cluster answers with a transient failure (a node
    /// joining or leaving), so that a finished result is delivered rather than computed again. A report that still
    /// fails is logged (false); the router finds the request when it next asks this runner about its requests.
    /// </summary>
    private async Task<bool> CompleteRequestAsync(InferenceResult result)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await requests.Get(result.RequestId).CompleteAsync(result);
                return true;
            }
            catch (Exception ex) when (attempt < ReportAttempts && ClusterFailures.IsTransient(ex))
            {
                await Task.Delay(ReportRetryDelay, time);
            }
            catch (Exception ex)
            {
                LogReportFailed(logger, ex, result.RequestId, "request");
                return false;
            }
        }
    }

    private async Task<RunnerResponse> RunAndPublishAsync(RunnerInvocation invocation)
    {
        if (!_apps.TryGetValue(invocation.AppId, out var hosted))
        {
            var missing = new RequestError(ErrorCodes.AppNotFound, $"Runner '{_key}' does not serve app '{invocation.AppId}'.");
            return new RunnerResponse(null, missing, NextEvent(invocation.AppId, null, HintsEventKind.Response) with { RequestId = invocation.RequestId });
        }

        var started = time.GetTimestamp();
        var (output, error) = await RunGuardedAsync(hosted, invocation.RequestId,
            async token => await hosted.App.HandleJsonAsync(invocation.Path, invocation.InputJson, PartialsOf(invocation.RequestId), token));
        if (error is null)
        {
            var elapsed = time.GetElapsedTime(started);
            hosted.RecordInference(elapsed);
            metrics.Served(invocation.AppId, elapsed);
        }

        // The response carries the same event, so neither the caller nor the router waits for the stream.
        var hints = NextEvent(invocation.AppId, hosted, _draining ? HintsEventKind.Draining : HintsEventKind.Response) with { RequestId = invocation.RequestId };
        _ = PublishAsync(hints);
        return new RunnerResponse(output, error, hints);
    }

    /// <summary>
    /// Publishes a streaming request's partial outputs, in order, before the request is reported complete; one that cannot
    /// be published is logged and skipped, and the request goes on.
    /// </summary>
    private Func<string, Task> PartialsOf(string requestId) => async outputJson =>
    {
        try
        {
            await GrainFactory.GetGrain<IPartialOutputsGrain>(requestId).PublishAsync(outputJson);
        }
        catch (Exception ex)
        {
            LogPartialFailed(logger, requestId, _key.ToString(), ex.Message);
        }
    };

    /// <summary>Runs app code within the app's concurrency and time limits; every failure becomes an error that names it.</summary>
    private async Task<(string? Output, RequestError? Error)> RunGuardedAsync(HostedApp hosted, string requestId, Func<CancellationToken, Task<string?>> work)
    {
        var settings = hosted.App.Settings;
        var appId = hosted.App.AppId;
        using var cancellation = new CancellationTokenSource();
        _running[requestId] = cancellation;
        try
        {
            // A cancel that arrives while the request waits for a slot is honoured too.
            await hosted.Slots.WaitAsync(cancellation.Token);
        }
        catch (OperationCanceledException)
        {
            _running.Remove(requestId);
            return (null, new RequestError(ErrorCodes.Cancelled, "The request was cancelled before it started running."));
        }

        hosted.InFlight++;
        using var timeout = new CancellationTokenSource(settings.RequestTimeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, cancellation.Token);
        using var leases = PipelineLeaseScope.Begin();
        try
        {
            return (await work(linked.Token), null);
        }
        catch (FalAppException ex)
        {
            return (null, new RequestError(ex.Code, ex.Message));
        }
        catch (ModelStoreException ex)
        {
            return (null, new RequestError(ex.Code, ex.Message));
        }
        catch (PipelineCacheException ex)
        {
            return (null, new RequestError(ex.Code, ex.Message));
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            return (null, new RequestError(ErrorCodes.RequestTimeout, $"The request ran longer than app '{appId}' allows ({settings.RequestTimeout})."));
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            return (null, new RequestError(ErrorCodes.Cancelled, "The request was cancelled while running."));
        }
        catch (Exception ex)
        {
            LogAppFailed(logger, ex, appId, requestId, _key.ToString());
            return (null, new RequestError(ErrorCodes.AppError, $"The app failed: {ex.GetType().Name}: {ex.Message}"));
        }
        finally
        {
            foreach (var key in leases.ReleaseForgotten())
            {
                LogLeaseLeaked(logger, appId, key, requestId, _key.ToString());
            }

            _running.Remove(requestId);
            hosted.InFlight--;
            hosted.Slots.Release();
        }
    }

    private async Task HeartbeatAsync(CancellationToken cancellationToken)
    {
        foreach (var hosted in _apps.Values)
        {
            await PublishAsync(NextEvent(hosted.App.AppId, hosted, _draining ? HintsEventKind.Draining : HintsEventKind.Heartbeat));
        }
    }

    private HintsEvent NextEvent(string appId, HostedApp? hosted, HintsEventKind kind) => Describe(appId, hosted, kind, ++_sequence);

    private HintsEvent Describe(string appId, HostedApp? hosted, HintsEventKind kind, long sequence) => new(
        RunnerId: _key.ToString(),
        Silo: _key.Silo,
        Device: _key.Device,
        AppId: appId,
        Hints: hosted is null ? [] : Bounded(appId, "hints", Provided(hosted, h => h.App.ProvideHints())),
        InFlight: hosted?.InFlight ?? 0,
        Capacity: hosted?.App.Settings.MaxMultiplexing ?? 0,
        Sequence: sequence,
        Timestamp: time.GetUtcNow(),
        Kind: kind,
        Loading: hosted is null ? [] : Bounded(appId, "loading", Provided(hosted, h => h.App.ProvideLoading())),
        Cache: _pipelines?.Usage() ?? CacheUsage.None,
        Routing: hosted is null ? null : new AppRouting(hosted.App.Settings.HintField, hosted.MeanInferenceMs, hosted.App.Settings.InputLimits),
        Warm: hosted is null ? [] : Bounded(appId, "warm", Provided(hosted, h => h.App.ProvideWarm())));

    /// <summary>What the app reports; an app that throws or returns null reports nothing (and the error is logged).</summary>
    private IReadOnlyList<string> Provided(HostedApp hosted, Func<HostedApp, IReadOnlyList<string>?> read)
    {
        try
        {
            return read(hosted) ?? [];
        }
        catch (Exception ex)
        {
            LogAppFailed(logger, ex, hosted.App.AppId, "(hints)", _key.ToString());
            return [];
        }
    }

    /// <summary>Keeps the first entries that fit the limits, in the app's order, and logs an error naming what was cut.</summary>
    private ImmutableArray<string> Bounded(string appId, string what, IReadOnlyList<string> hints)
    {
        // Callers may send hints of up to Hints.MaxLength characters: a runner keeps every hint a caller could match.
        var maxHints = options.Value.MaxHints;
        var kept = hints.Where(h => Client.Contracts.Hints.TryValidate(h, out _)).Take(maxHints).ToImmutableArray();
        if (kept.Length != hints.Count)
        {
            LogHintsTruncated(logger, appId, _key.ToString(), what, hints.Count, kept.Length, maxHints, Client.Contracts.Hints.MaxLength);
        }

        return kept;
    }

    /// <summary>Publishes in order, a waiting event replaced by a newer one of its app (<see cref="HintPublisher"/>).</summary>
    private Task PublishAsync(HintsEvent hints) => (_publisher ??= new HintPublisher(PublishNowAsync)).PublishAsync(hints);

    private async Task PublishNowAsync(HintsEvent hints)
    {
        try
        {
            var stream = this.GetStreamProvider(HintStream.ProviderName)
                .GetStream<HintsEvent>(StreamId.Create(HintStream.Namespace, hints.AppId));
            await stream.OnNextAsync(hints);
        }
        catch (Exception ex)
        {
            // The response carries the same hints; a lost event only delays other routers' view.
            LogPublishFailed(logger, ex, hints.RunnerId, hints.AppId);
        }
    }

    private sealed class HostedApp(FalApp app, IRouterGrain router)
    {
        public FalApp App { get; } = app;

        // Made once: making a grain reference reads the interface's attributes each time.
        public IRouterGrain Router { get; } = router;

        private long _completed;
        private double _totalMs;

        public SemaphoreSlim Slots { get; } = new(app.Settings.MaxMultiplexing, app.Settings.MaxMultiplexing);

        public int InFlight { get; set; }

        public double MeanInferenceMs => _completed == 0 ? 0 : _totalMs / _completed;

        public void RecordInference(TimeSpan elapsed)
        {
            _completed++;
            _totalMs += elapsed.TotalMilliseconds;
        }
    }
}
