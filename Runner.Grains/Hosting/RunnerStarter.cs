using System.Collections.Immutable;
using FalHints.Client.Contracts;
using FalHints.Runner.Apps;
using FalHints.Runner.Runners;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace FalHints.Runner.Hosting;

/// <summary>
/// Activates the silo's runners when it becomes active, so they announce themselves to routers; when the host
/// stops, drains them first: they stop taking work, and the silo waits (up to the drain timeout) for what they run.
/// The drain starts in the host's "stopping" phase, before the silo itself begins to leave the cluster, so the
/// runners' "draining" events still reach the hints stream; a silo stopped without its host drains in its lifecycle.
/// It also reports the apps the silo serves (none without runners), with what each declares to routers, to the cluster's <see cref="IAppRegistryGrain"/>, at
/// start and every heartbeat interval, so requests for apps nobody serves are refused at once.
/// </summary>
internal sealed partial class RunnerStarter(
    IServiceProvider services,
    IGrainFactory grains,
    ILocalSiloDetails localSilo,
    IOptions<RunnerOptions> options,
    TimeProvider time,
    ILogger<RunnerStarter> logger) : ILifecycleParticipant<ISiloLifecycle>, IHostedLifecycleService
{
    private readonly Lock _gate = new();
    private IReadOnlyList<string> _devices = [];
    private Task? _drain;
    private ITimer? _registration;

    public void Participate(ISiloLifecycle lifecycle) =>
        lifecycle.Subscribe(nameof(RunnerStarter), ServiceLifecycleStage.Active, StartAsync, DrainAsync);

    /// <inheritdoc />
    /// <remarks>An ungraceful stop (its token already cancelled) does not drain.</remarks>
    public Task StoppingAsync(CancellationToken cancellationToken)
    {
        _registration?.Dispose();
        return _devices.Count == 0 || cancellationToken.IsCancellationRequested ? Task.CompletedTask : DrainAsync(cancellationToken);
    }

    /// <inheritdoc />
    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <inheritdoc />
    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <inheritdoc />
    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    Task IHostedService.StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    Task IHostedService.StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private async Task StartAsync(CancellationToken cancellationToken)
    {
        _devices = ResolveDevices(options.Value);
        foreach (var runner in Runners())
        {
            await runner.StartAsync().WaitAsync(cancellationToken);
        }

        LogStarted(logger, _devices.Count, localSilo.Name, string.Join(", ", _devices));
        await RegisterAppsAsync();
        var interval = options.Value.HeartbeatInterval;
        _registration = time.CreateTimer(_ => _ = RegisterAppsAsync(), null, interval, interval);
    }

    /// <summary>Tells the registry what this silo serves; a failure is retried at the next interval.</summary>
    private async Task RegisterAppsAsync()
    {
        var apps = _devices.Count == 0 ? [] : services.GetServices<FalAppRegistration>().Select(r => r.Declaration(services))
            .DistinctBy(a => a.AppId, StringComparer.Ordinal).ToImmutableArray();
        try
        {
            await grains.GetGrain<IAppRegistryGrain>(0).RegisterAsync(localSilo.Name, apps);
        }
        catch (Exception ex)
        {
            LogRegistrationFailed(logger, localSilo.Name, ex.Message);
        }
    }

    /// <summary>Drains once; a second caller (host, then silo lifecycle) waits for the same drain.</summary>
    private Task DrainAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return _drain ??= DrainOnceAsync(cancellationToken);
        }
    }

    private async Task DrainOnceAsync(CancellationToken cancellationToken)
    {
        _registration?.Dispose();
        var runners = Runners().ToList();
        var started = time.GetTimestamp();
        try
        {
            foreach (var runner in runners)
            {
                await runner.DrainAsync().WaitAsync(cancellationToken);
            }

            var running = await RunningAsync(runners);
            while (running > 0 && time.GetElapsedTime(started) < options.Value.DrainTimeout)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(100), time, cancellationToken);
                running = await RunningAsync(runners);
            }

            LogDrained(logger, localSilo.Name, running, time.GetElapsedTime(started).TotalSeconds);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The host gave up waiting (its shutdown timeout, or a forced stop): stop without the rest of the drain.
            LogDrainCut(logger, localSilo.Name, time.GetElapsedTime(started).TotalSeconds);
        }
    }

    private static async Task<int> RunningAsync(List<IRunnerGrain> runners)
    {
        var total = 0;
        foreach (var runner in runners)
        {
            var status = await runner.GetStatusAsync();
            total += Math.Max(status.Unreported, status.Apps.Sum(a => a.InFlight));
        }

        return total;
    }

    private IEnumerable<IRunnerGrain> Runners() =>
        _devices.Select(device => grains.GetGrain<IRunnerGrain>(new RunnerKey(localSilo.Name, device).ToString()));

    /// <summary>Explicit devices if configured, else every CUDA device (RunnersPerGpu runners each), else the configured count of CPU runners.</summary>
    internal static IReadOnlyList<string> ResolveDevices(RunnerOptions options)
    {
        if (options.Devices.Count > 0)
        {
            return [.. options.Devices];
        }

        var cuda = TorchSharp.torch.cuda.is_available() ? TorchSharp.torch.cuda.device_count() : 0;
        return cuda > 0
            ? [.. Enumerable.Range(0, cuda).SelectMany(i => options.RunnersPerGpu == 1
                ? [$"cuda:{i}"]
                : Enumerable.Range(0, options.RunnersPerGpu).Select(slot => $"cuda:{i}.{slot}"))]
            : [.. Enumerable.Range(0, options.CpuRunners).Select(i => $"cpu:{i}")];
    }

    [LoggerMessage(1, LogLevel.Information, "Started {Count} runners on silo {Silo}: {Devices}")]
    private static partial void LogStarted(ILogger logger, int count, string silo, string devices);

    [LoggerMessage(3, LogLevel.Warning, "The drain of silo {Silo}'s runners was cut short after {Seconds:0.0} s: the host stopped waiting")]
    private static partial void LogDrainCut(ILogger logger, string silo, double seconds);

    [LoggerMessage(4, LogLevel.Warning, "Silo {Silo} could not report its apps to the app registry ({Reason}); it tries again at its next heartbeat")]
    private static partial void LogRegistrationFailed(ILogger logger, string silo, string reason);

    [LoggerMessage(2, LogLevel.Information, "Drained the runners of silo {Silo} in {Seconds:0.0} s; {Running} requests still running")]
    private static partial void LogDrained(ILogger logger, string silo, int running, double seconds);
}
