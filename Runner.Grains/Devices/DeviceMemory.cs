using System.Runtime.InteropServices;

namespace FalHints.Runner.Devices;

/// <summary>
/// Total memory of a CUDA device, read through NVML (<c>libnvidia-ml.so.1</c>, shipped with the NVIDIA
/// driver). TorchSharp has no CUDA memory query, so this is how a runner sizes its default budget.
/// </summary>
internal static partial class DeviceMemory
{
    private const string Nvml = "libnvidia-ml.so.1";

    /// <summary>The (physical) device's total memory in bytes, or null when it is not a CUDA device or NVML is absent.</summary>
    public static long? TotalBytes(string device)
    {
        if (!device.StartsWith("cuda:", StringComparison.Ordinal) || !uint.TryParse(DeviceNames.Physical(device).AsSpan(5), out var index))
        {
            return null;
        }

        try
        {
            if (nvmlInit_v2() != 0)
            {
                return null;
            }

            try
            {
                return nvmlDeviceGetHandleByIndex_v2(index, out var handle) == 0 && nvmlDeviceGetMemoryInfo(handle, out var memory) == 0
                    ? (long)memory.Total
                    : null;
            }
            finally
            {
                _ = nvmlShutdown();
            }
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
        {
            return null;
        }
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct NvmlMemory
    {
        public ulong Total;
        public ulong Free;
        public ulong Used;
    }

    [LibraryImport(Nvml)]
    private static partial int nvmlInit_v2();

    [LibraryImport(Nvml)]
    private static partial int nvmlShutdown();

    [LibraryImport(Nvml)]
    private static partial int nvmlDeviceGetHandleByIndex_v2(uint index, out nint device);

    [LibraryImport(Nvml)]
    private static partial int nvmlDeviceGetMemoryInfo(nint device, out NvmlMemory memory);
}
