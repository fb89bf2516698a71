using FalHints.Client.Contracts;
using FalHints.Runner.Runners;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace FalHints.Runner.Hosting;

/// <summary>When the silo becomes active, activates its runners so they announce themselves to routers.</summary>
internal sealed partial class RunnerStarter(
    IGrainFactory grains,
    ILocalSiloDetails localSilo,
    IOptions<RunnerOptions> options,
    ILogger<RunnerStarter> logger) : ILifecycleParticipant<ISiloLifecycle>
{
    public void Participate(ISiloLifecycle lifecycle) =>
        lifecycle.Subscribe(nameof(RunnerStarter), ServiceLifecycleStage.Active, StartAsync, _ => Task.CompletedTask);

    private async Task StartAsync(CancellationToken cancellationToken)
    {
        var devices = ResolveDevices(options.Value);
        foreach (var device in devices)
        {
            var key = new RunnerKey(localSilo.Name, device).ToString();
            await grains.GetGrain<IRunnerGrain>(key).StartAsync().WaitAsync(cancellationToken);
        }

        LogStarted(logger, devices.Count, localSilo.Name, string.Join(", ", devices));
    }

    /// <summary>Explicit devices if configured, else every CUDA device, else the configured count of CPU runners.</summary>
    internal static IReadOnlyList<string> ResolveDevices(RunnerOptions options)
    {
        if (options.Devices.Count > 0)
        {
            return [.. options.Devices];
        }

        var cuda = TorchSharp.torch.cuda.is_available() ? TorchSharp.torch.cuda.device_count() : 0;
        return cuda > 0
            ? [.. Enumerable.Range(0, cuda).Select(i => $"cuda:{i}")]
            : [.. Enumerable.Range(0, options.CpuRunners).Select(i => $"cpu:{i}")];
    }

    [LoggerMessage(1, LogLevel.Information, "Started {Count} runners on silo {Silo}: {Devices}")]
    private static partial void LogStarted(ILogger logger, int count, string silo, string devices);
}
