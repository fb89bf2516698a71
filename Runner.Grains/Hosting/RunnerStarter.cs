using FalHints.Client.Contracts;
using FalHints.Runner.Runners;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace FalHints.Runner.Hosting;

/// <summary>
/// Activates the silo's runners when it becomes active, so they announce themselves to routers; when the silo
/// stops, drains them first: they stop taking work, and the silo waits (up to the drain timeout) for what they run.
/// </summary>
internal sealed partial class RunnerStarter(
    IGrainFactory grains,
    ILocalSiloDetails localSilo,
    IOptions<RunnerOptions> options,
    TimeProvider time,
    ILogger<RunnerStarter> logger) : ILifecycleParticipant<ISiloLifecycle>
{
    private IReadOnlyList<string> _devices = [];

    public void Participate(ISiloLifecycle lifecycle) =>
        lifecycle.Subscribe(nameof(RunnerStarter), ServiceLifecycleStage.Active, StartAsync, DrainAsync);

    private async Task StartAsync(CancellationToken cancellationToken)
    {
        _devices = ResolveDevices(options.Value);
        foreach (var runner in Runners())
        {
            await runner.StartAsync().WaitAsync(cancellationToken);
        }

        LogStarted(logger, _devices.Count, localSilo.Name, string.Join(", ", _devices));
    }

    private async Task DrainAsync(CancellationToken cancellationToken)
    {
        var runners = Runners().ToList();
        foreach (var runner in runners)
        {
            await runner.DrainAsync().WaitAsync(cancellationToken);
        }

        var started = time.GetTimestamp();
        var running = await RunningAsync(runners);
        while (running > 0 && time.GetElapsedTime(started) < options.Value.DrainTimeout && !cancellationToken.IsCancellationRequested)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(100), time, cancellationToken);
            running = await RunningAsync(runners);
        }

        LogDrained(logger, localSilo.Name, running, time.GetElapsedTime(started).TotalSeconds);
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

    [LoggerMessage(2, LogLevel.Information, "Drained the runners of silo {Silo} in {Seconds:0.0} s; {Running} requests still running")]
    private static partial void LogDrained(ILogger logger, string silo, int running, double seconds);
}
