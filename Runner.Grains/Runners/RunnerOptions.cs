using FalHints.Runner.Devices;

namespace FalHints.Runner.Runners;

/// <summary>How a silo hosts runners (section <c>FalHints:Runners</c>).</summary>
public sealed class RunnerOptions
{
    /// <summary>The configuration section.</summary>
    public const string SectionName = "FalHints:Runners";

    /// <summary>Explicit devices (<c>cpu:0</c>, <c>cuda:1</c>, ...). Empty: every CUDA device, else <see cref="CpuRunners"/> CPU runners.</summary>
    public IList<string> Devices { get; } = [];

    /// <summary>CPU runners to host where there is no GPU and no explicit device list.</summary>
    public int CpuRunners { get; set; } = 2;

    /// <summary>How often a runner re-announces its hints, so routers that restart rebuild their index.</summary>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Bytes of pipelines one runner may hold. Unset: 90% of the device's memory on CUDA (read through NVML),
    /// else <see cref="DefaultCpuBudgetBytes"/>.
    /// </summary>
    public long? PipelineBudgetBytes { get; set; }

    /// <summary>The budget of a CPU runner when none is configured: 2 GiB.</summary>
    public const long DefaultCpuBudgetBytes = 2L << 30;

    /// <summary>The budget for <paramref name="device"/>: configured, else from the device's memory, else the CPU default.</summary>
    public long BudgetFor(string device) =>
        PipelineBudgetBytes ?? (DeviceMemory.TotalBytes(device) is { } total ? total / 10 * 9 : DefaultCpuBudgetBytes);

    /// <summary>How long a stopping silo waits for its runners' requests to finish after they stop taking work.</summary>
    public TimeSpan DrainTimeout { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Most hints a runner reports per app; longer lists are truncated (first ones kept).</summary>
    public int MaxHints { get; set; } = 64;

    /// <summary>Longest hint reported, in characters; longer hints are dropped.</summary>
    public int MaxHintLength { get; set; } = 256;
}
