using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using FalHints.Runner.Devices;
using Microsoft.Win32.SafeHandles;
using TorchSharp;
using static TorchSharp.torch;

namespace FalHints.Runner.Pipelines.Weights;

/// <summary>
/// Loads a safetensors file into any TorchSharp module at the speed of the machine: the module is built on the meta
/// device (shapes, no memory, no random initial weights), the file's header is checked against the module's state dict
/// before anything is allocated, each tensor is then allocated uninitialised on the target device and its bytes read in
/// large chunks: on the CPU straight into the tensor's memory (backed by huge pages), on CUDA through pinned 16 MB staging
/// buffers filled by several readers while the previous chunks are copied to the device without blocking. Call on the
/// device's thread; nothing is left allocated when it throws.
/// </summary>
public static class SafetensorsLoader
{
    /// <summary>Bytes per staging buffer, and per read call on the CPU.</summary>
    public const int ChunkBytes = 16 << 20;

    // On the CPU a tensor is taken in spans of at most this size (a span's limit is 2 GiB), each read ChunkBytes at a
    // time: one read call of hundreds of megabytes into fresh pages measured several times slower than 16 MB calls.
    private const int SpanBytes = 1 << 30;

    // One set of staging buffers per device thread, kept for the thread's life: pinning memory is slow.
    [ThreadStatic]
    private static StagedReader? _staging;

    /// <summary>
    /// Builds a module with <paramref name="build"/> on the meta device, checks <paramref name="path"/> against it and
    /// fills it on <paramref name="device"/>. <paramref name="build"/> must put every tensor on the device it is given
    /// (and draw nothing on the meta device, or the load pays for that draw).
    /// </summary>
    /// <exception cref="WeightsFormatException">The file is not safetensors, or not this module's weights; the message names the tensor.</exception>
    /// <exception cref="IOException">The file could not be read.</exception>
    public static TModule Load<TModule>(string path, Func<Device, TModule> build, Device device)
        where TModule : nn.Module =>
        Load(path, build, device, device.type == DeviceType.CUDA ? _staging ??= new StagedReader(ChunkBytes, StagedReader.DefaultReaders) : null);

    /// <summary>As <see cref="Load{TModule}(string, Func{Device, TModule}, Device)"/>, through <paramref name="staging"/> when it is given.</summary>
    internal static TModule Load<TModule>(string path, Func<Device, TModule> build, Device device, StagedReader? staging)
        where TModule : nn.Module
    {
        using var file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        var header = SafetensorsHeader.Read(file);
        var module = build(META);
        try
        {
            header.CheckAgainst(ModuleTensors.Expected(module));
            ModuleTensors.Replace(module, (_, current) => empty(current.shape, dtype: current.dtype, device: device));
            var targets = Targets(module, header);
            if (staging is not null)
            {
                staging.Fill(file, targets, device);
            }
            else
            {
                FillOnHost(file, targets);
            }

            return module;
        }
        catch
        {
            module.Dispose();
            throw;
        }
    }

    /// <summary>Checks <paramref name="path"/>'s header against the module <paramref name="build"/> makes on the meta device, and nothing more.</summary>
    /// <exception cref="WeightsFormatException">The file is not safetensors, or not this module's weights.</exception>
    public static SafetensorsHeader Check<TModule>(string path, Func<Device, TModule> build)
        where TModule : nn.Module
    {
        using var file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        var header = SafetensorsHeader.Read(file);
        using var module = build(META);
        header.CheckAgainst(ModuleTensors.Expected(module));
        return header;
    }

    /// <summary>The module's tensors beside the file's entry for each.</summary>
    internal static List<(SafetensorsTensor Entry, Tensor Target)> Targets(nn.Module module, SafetensorsHeader header)
    {
        var state = module.state_dict();
        return [.. header.Tensors.Select(entry => (entry, state[entry.Name]))];
    }

    private static void FillOnHost(SafeFileHandle file, List<(SafetensorsTensor Entry, Tensor Target)> targets)
    {
        foreach (var (entry, target) in targets)
        {
            if (entry.Length == 0)
            {
                continue;
            }

            using var flat = target.view(-1);
            var perSpan = Math.Max(1, SpanBytes / entry.ElementSize);
            for (var first = 0L; first < entry.Elements; first += perSpan)
            {
                using var part = flat.narrow(0, first, Math.Min(perSpan, entry.Elements - first));
                var span = part.bytes;
                var offset = entry.Offset + first * entry.ElementSize;
                HugePages.Advise(AddressOf(span), span.Length);
                for (var done = 0; done < span.Length; done += ChunkBytes)
                {
                    SafetensorsHeader.ReadExactly(file, span.Slice(done, Math.Min(ChunkBytes, span.Length - done)), offset + done, $"tensor '{entry.Name}'");
                }
            }
        }
    }

    internal static unsafe nint AddressOf(Span<byte> span) => (nint)Unsafe.AsPointer(ref MemoryMarshal.GetReference(span));
}
