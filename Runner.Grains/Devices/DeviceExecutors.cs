using System.Collections.Concurrent;

namespace FalHints.Runner.Devices;

/// <summary>One <see cref="DeviceExecutor"/> per device per process, created on first use.</summary>
public sealed class DeviceExecutors : IDisposable
{
    private readonly ConcurrentDictionary<string, Lazy<DeviceExecutor>> _executors = new(StringComparer.Ordinal);

    /// <summary>The executor of <paramref name="device"/>.</summary>
    public DeviceExecutor For(string device) =>
        _executors.GetOrAdd(device, static d => new Lazy<DeviceExecutor>(() => new DeviceExecutor(d))).Value;

    /// <summary>Stops every device thread.</summary>
    public void Dispose()
    {
        foreach (var executor in _executors.Values.Where(e => e.IsValueCreated))
        {
            executor.Value.Dispose();
        }
    }
}
