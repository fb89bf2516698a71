using System.Runtime.InteropServices;

namespace FalHints.Runner.Devices;

/// <summary>
/// Asks Linux to back a large host buffer with transparent huge pages (<c>madvise(MADV_HUGEPAGE)</c>) before it is first
/// written, as LibTorch itself does with <c>THP_MEM_ALLOC_ENABLE=1</c>: filling fresh memory in 4 KiB pages costs a
/// page fault each, which on virtual machines is most of the cost of loading weights into host memory.
/// </summary>
internal static partial class HugePages
{
    private const int MadviseHugePage = 14;
    private const long HugePageBytes = 2L << 20;

    /// <summary>Advises the whole 2 MiB pages inside <c>[address, address + length)</c>; a no-op elsewhere than Linux or when refused.</summary>
    public static void Advise(nint address, long length)
    {
        if (!OperatingSystem.IsLinux() || length < 2 * HugePageBytes)
        {
            return;
        }

        var start = (address + (nint)(HugePageBytes - 1)) & ~(nint)(HugePageBytes - 1);
        var end = (address + (nint)length) & ~(nint)(HugePageBytes - 1);
        if (end > start)
        {
            // Best effort: a kernel without THP, or with it set to 'never', refuses and the pages stay small.
            _ = madvise(start, end - start, MadviseHugePage);
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int madvise(nint address, nint length, int advice);
}
