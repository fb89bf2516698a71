using FalHints.Runner.Devices;
using FalHints.Runner.Pipelines;

namespace FalHints.Runner.Runners;

/// <summary>How a silo hosts runners (section <c>FalHints:Runners</c>).</summary>
public sealed class RunnerOptions
{
    /// <summary>The configuration section.</summary>
    public const string SectionName = "FalHints:Runners";

    /// <summary>
    /// Explicit devices (<c>cpu:0</c>, <c>cuda:1</c>, <c>cuda:0.1</c> for a second runner on GPU 0, ...). Empty: every
    /// CUDA device (<see cref="RunnersPerGpu"/> runners each), else <see cref="CpuRunners"/> CPU runners.
    /// </summary>
    public IList<string> Devices { get; } = [];

    /// <summary>
    /// Runners that share each CUDA device when no explicit device list is given (default 1). With more than one,
    /// the runners are <c>cuda:N.0</c>, <c>cuda:N.1</c>, ..., each with its own thread and an equal share of the budget.
    /// </summary>
    public int RunnersPerGpu { get; set; } = 1;

    /// <summary>CPU runners to host where there is no GPU and no explicit device list.</summary>
    public int CpuRunners { get; set; } = 2;

    /// <summary>How often a runner re-announces its hints, so routers that restart rebuild their index.</summary>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Bytes of pipelines one runner may hold. Unset: 90% of the device's memory on CUDA (as the runner reads it from the
    /// driver), split evenly between the runners that share the device, else <see cref="DefaultCpuBudgetBytes"/>.
    /// </summary>
    public long? PipelineBudgetBytes { get; set; }

    /// <summary>The budget of a CPU runner when none is configured: 2 GiB.</summary>
    public const long DefaultCpuBudgetBytes = 2L << 30;

    /// <summary>
    /// The budget for <paramref name="device"/>, whose physical device has <paramref name="deviceBytes"/> of memory (null
    /// when unknown, as on CPU): configured, else from the device's memory, else the CPU default.
    /// </summary>
    public long BudgetFor(string device, long? deviceBytes) =>
        PipelineBudgetBytes ?? (deviceBytes is { } total ? total / 10 * 9 / SharersOf(device) : DefaultCpuBudgetBytes);

    /// <summary>
    /// Bytes of pipelines one GPU runner keeps in host memory (pinned) after they leave the device, so that bringing one
    /// back costs only the copy to the device: the host tier. Unset: <see cref="DefaultHostShare"/> of the machine's memory
    /// (as .NET sees it, container limits included), split evenly between the silo's GPU runners; 0 turns the tier off.
    /// CPU runners have no host tier: their pipelines are in host memory already, and the page cache keeps the files.
    /// </summary>
    public long? HostBudgetBytes { get; set; }

    /// <summary>The share of the machine's memory that the GPU runners of a silo keep pipelines in by default: half.</summary>
    public const double DefaultHostShare = 0.5;

    /// <summary>
    /// The host-tier budget of <paramref name="device"/> on a silo with <paramref name="gpuRunners"/> GPU runners and
    /// <paramref name="machineBytes"/> of memory: 0 for CPU runners, else configured, else the default share.
    /// </summary>
    public long HostBudgetFor(string device, int gpuRunners, long machineBytes) =>
        !device.StartsWith("cuda:", StringComparison.Ordinal) ? 0
        : HostBudgetBytes ?? (long)(machineBytes * DefaultHostShare) / Math.Max(1, gpuRunners);

    /// <summary>
    /// How weights are read from the model store: <see cref="WeightLoader.Direct"/> (the default), or
    /// <see cref="WeightLoader.PyBridge"/>, the slower loader of earlier versions, kept to compare against.
    /// </summary>
    public WeightLoader WeightLoader { get; set; } = WeightLoader.Direct;

    /// <summary>How many runners of this silo share the physical device of <paramref name="device"/>.</summary>
    public int SharersOf(string device)
    {
        var physical = DeviceNames.Physical(device);
        if (Devices.Count > 0)
        {
            return Math.Max(1, Devices.Count(d => string.Equals(DeviceNames.Physical(d), physical, StringComparison.Ordinal)));
        }

        return string.Equals(physical, device, StringComparison.Ordinal) ? 1 : RunnersPerGpu;
    }

    /// <summary>How long a stopping silo waits for its runners' requests to finish after they stop taking work.</summary>
    public TimeSpan DrainTimeout { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Most hints a runner reports per app; longer lists are truncated (first ones kept).</summary>
    public int MaxHints { get; set; } = 64;

}
