using System.Collections.Immutable;
using FalHints.Client.Contracts;
using FalHints.Runner.Apps;
using FalHints.Runner.Devices;
using FalHints.Runner.Models;
using FalHints.Runner.Placement;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Placement;

namespace FalHints.Runner.Runners;

/// <summary>
/// A runner on one device of one silo. It hosts one instance of each registered app, runs requests
/// on the device's thread and, after every response, publishes what each app holds on the hint stream.
/// </summary>
[SiloPinnedPlacement]
[Immovable]
public sealed partial class RunnerGrain(
    IServiceProvider services,
    ILocalSiloDetails localSilo,
    ModelStore models,
    DeviceExecutors executors,
    IOptions<RunnerOptions> options,
    TimeProvider time,
    ILogger<RunnerGrain> logger) : Grain, IRunnerGrain
{
    private readonly Dictionary<string, HostedApp> _apps = new(StringComparer.Ordinal);
    private RunnerKey _key;
    private long _sequence;
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
        var context = new RunnerContext(id, _key.Device, executors.For(_key.Device), models);
        foreach (var registration in services.GetServices<FalAppRegistration>())
        {
            var app = registration.Create(services);
            await app.SetupAsync(context, cancellationToken);
            _apps.Add(app.AppId, new HostedApp(app));
        }

        this.RegisterGrainTimer(HeartbeatAsync, new GrainTimerCreationOptions(options.Value.HeartbeatInterval, options.Value.HeartbeatInterval)
        {
            Interleave = true,
            KeepAlive = true,
        });
        LogActivated(logger, id, _apps.Count);
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
    public async Task<RunnerResponse> InvokeAsync(RunnerInvocation invocation)
    {
        if (!_apps.TryGetValue(invocation.AppId, out var hosted))
        {
            var missing = new RequestError(ErrorCodes.AppNotFound, $"Runner '{_key}' does not serve app '{invocation.AppId}'.");
            return new RunnerResponse(null, missing, NextEvent(invocation.AppId, null, HintsEventKind.Response));
        }

        string? output = null;
        RequestError? error = null;
        hosted.InFlight++;
        try
        {
            using var timeout = new CancellationTokenSource(hosted.App.Settings.RequestTimeout, time);
            output = await hosted.App.HandleJsonAsync(invocation.InputJson, timeout.Token);
        }
        catch (FalAppException ex)
        {
            error = new RequestError(ex.Code, ex.Message);
        }
        catch (ModelStoreException ex)
        {
            error = new RequestError(ex.Code, ex.Message);
        }
        catch (OperationCanceledException)
        {
            error = new RequestError(ErrorCodes.AppError, $"The request ran longer than the app's timeout of {hosted.App.Settings.RequestTimeout}.");
        }
        catch (Exception ex)
        {
            LogAppFailed(logger, ex, invocation.AppId, invocation.RequestId, _key.ToString());
            error = new RequestError(ErrorCodes.AppError, $"The app failed: {ex.GetType().Name}: {ex.Message}");
        }
        finally
        {
            hosted.InFlight--;
        }

        var hints = NextEvent(invocation.AppId, hosted, HintsEventKind.Response);
        await PublishAsync(hints);
        return new RunnerResponse(output, error, hints);
    }

    /// <inheritdoc />
    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        _draining = true;
        foreach (var hosted in _apps.Values)
        {
            await PublishAsync(NextEvent(hosted.App.AppId, hosted, HintsEventKind.Draining));
            await hosted.App.TeardownAsync(cancellationToken);
        }
    }

    private async Task HeartbeatAsync(CancellationToken cancellationToken)
    {
        foreach (var hosted in _apps.Values)
        {
            await PublishAsync(NextEvent(hosted.App.AppId, hosted, _draining ? HintsEventKind.Draining : HintsEventKind.Heartbeat));
        }
    }

    private HintsEvent NextEvent(string appId, HostedApp? hosted, HintsEventKind kind) => new(
        RunnerId: _key.ToString(),
        Silo: _key.Silo,
        Device: _key.Device,
        AppId: appId,
        Hints: hosted is null ? [] : BoundedHints(appId, hosted.App.ProvideHints()),
        InFlight: hosted?.InFlight ?? 0,
        Capacity: hosted?.App.Settings.MaxMultiplexing ?? 0,
        Sequence: ++_sequence,
        Timestamp: time.GetUtcNow(),
        Kind: kind);

    /// <summary>Keeps the first hints that fit the limits, in the app's order, and says what was cut.</summary>
    private ImmutableArray<string> BoundedHints(string appId, IReadOnlyList<string> hints)
    {
        var limits = options.Value;
        var kept = hints.Where(h => h is not null && h.Length <= limits.MaxHintLength).Take(limits.MaxHints).ToImmutableArray();
        if (kept.Length != hints.Count)
        {
            LogHintsTruncated(logger, appId, _key.ToString(), hints.Count, kept.Length, limits.MaxHints, limits.MaxHintLength);
        }

        return kept;
    }

    private async Task PublishAsync(HintsEvent hints)
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

    private sealed class HostedApp(FalApp app)
    {
        public FalApp App { get; } = app;

        public int InFlight { get; set; }
    }
}
