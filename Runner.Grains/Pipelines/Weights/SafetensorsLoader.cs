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
    /// <summary>Bytes per staging buffer, and the most read by one call on the CPU.</summary>
    public const int ChunkBytes = 16 << 20;

    // On the CPU a tensor is read by a few calls of this size (the kernel copies straight into the tensor's pages).
    private const int CpuReadBytes = 1 << 30;

    [ThreadStatic]
    private static PinnedStaging? t_staging;

    /// <summary>
    /// Builds a module with <paramref name="build"/> on the meta device, checks <paramref name="path"/> against it and
    /// fills it on <paramref name="device"/>. <paramref name="build"/> must put every tensor on the device it is given
    /// (and draw nothing on the meta device, or the load pays for that draw).
    /// </summary>
    /// <exception cref="WeightsFormatException">The file is not safetensors, or not this module's weights; the message names the tensor.</exception>
    /// <exception cref="IOException">The file could not be read.</exception>
    public static TModule Load<TModule>(string path, Func<Device, TModule> build, Device device)
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
            if (device.type == DeviceType.CUDA)
            {
                (t_staging ??= new PinnedStaging()).Fill(file, targets, device);
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
    private static List<(SafetensorsTensor Entry, Tensor Target)> Targets(nn.Module module, SafetensorsHeader header)
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
            var perRead = Math.Max(1, CpuReadBytes / entry.ElementSize);
            for (var first = 0L; first < entry.Elements; first += perRead)
            {
                var count = Math.Min(perRead, entry.Elements - first);
                using var part = flat.narrow(0, first, count);
                var span = part.bytes;
                HugePages.Advise(AddressOf(span), span.Length);
                ReadExactly(file, span, entry.Offset + first * entry.ElementSize, entry.Name);
            }
        }
    }

    internal static void ReadExactly(SafeFileHandle file, Span<byte> buffer, long offset, string tensor)
    {
        while (!buffer.IsEmpty)
        {
            var read = RandomAccess.Read(file, buffer, offset);
            if (read == 0)
            {
                throw new WeightsFormatException($"the file ended at byte {offset} while tensor '{tensor}' was read: it was truncated while loading");
            }

            buffer = buffer[read..];
            offset += read;
        }
    }

    internal static unsafe nint AddressOf(Span<byte> span) => (nint)Unsafe.AsPointer(ref MemoryMarshal.GetReference(span));

    /// <summary>
    /// Pinned host buffers for one device thread, per element type, kept for the thread's life so that every load after
    /// the first finds them allocated (pinning memory is slow). Readers fill one set of buffers while the other set's
    /// non-blocking copies run; TorchSharp has no CUDA events, so a device synchronisation marks a set free again.
    /// </summary>
    private sealed class PinnedStaging
    {
        private static readonly int Readers = Math.Clamp(Environment.ProcessorCount / 4, 1, 4);
        private readonly Dictionary<ScalarType, Tensor[]> _buffers = [];

        public void Fill(SafeFileHandle file, List<(SafetensorsTensor Entry, Tensor Target)> targets, Device device)
        {
            var chunks = Chunks(targets);
            if (chunks.Count == 0)
            {
                return;
            }

            // Views and addresses are taken here, on the device thread; readers only write into pinned memory.
            var flats = targets.Select(t => t.Target.view(-1)).ToArray();
            var pending = Task.CompletedTask;
            try
            {
                var set = 0;
                pending = ReadBatchAsync(file, chunks, 0, set);
                for (var first = 0; first < chunks.Count; first += Readers)
                {
                    pending.GetAwaiter().GetResult();
                    // The copies out of the other set, issued one batch ago, must be done before readers refill it.
                    cuda.synchronize(device);
                    pending = first + Readers < chunks.Count ? ReadBatchAsync(file, chunks, first + Readers, 1 - set) : Task.CompletedTask;
                    for (var i = first; i < Math.Min(first + Readers, chunks.Count); i++)
                    {
                        var chunk = chunks[i];
                        using var target = flats[chunk.Target].narrow(0, chunk.FirstElement, chunk.Elements);
                        using var source = Buffer(chunk.Type, set, i - first).narrow(0, 0, chunk.Elements);
                        target.copy_(source, nonBlocking: true);
                    }

                    set = 1 - set;
                }

                pending.GetAwaiter().GetResult();
            }
            finally
            {
                // Nothing may still write into the buffers or read from them when the next load starts. A read that
                // failed has failed the load already (or fails it here, after the last batch).
                pending.ContinueWith(_ => { }, TaskScheduler.Default).Wait();
                cuda.synchronize(device);
                foreach (var flat in flats)
                {
                    flat.Dispose();
                }
            }
        }

        private Task ReadBatchAsync(SafeFileHandle file, List<Chunk> chunks, int first, int set)
        {
            var count = Math.Min(Readers, chunks.Count - first);
            var work = new (nint Address, int Length, long Offset, string Name)[count];
            for (var i = 0; i < count; i++)
            {
                var chunk = chunks[first + i];
                var span = Buffer(chunk.Type, set, i).bytes;
                work[i] = (AddressOf(span), (int)(chunk.Elements * SafetensorsHeader.ElementSize(chunk.Type)), chunk.Offset, chunk.Name);
            }

            return Task.WhenAll(work.Select(w => Task.Run(() => ReadInto(file, w))));
        }

        private static unsafe void ReadInto(SafeFileHandle file, (nint Address, int Length, long Offset, string Name) work) =>
            ReadExactly(file, new Span<byte>((void*)work.Address, work.Length), work.Offset, work.Name);

        private Tensor Buffer(ScalarType type, int set, int slot)
        {
            if (!_buffers.TryGetValue(type, out var buffers))
            {
                buffers = new Tensor[2 * Readers];
                for (var i = 0; i < buffers.Length; i++)
                {
                    using var pageable = empty(ChunkBytes / SafetensorsHeader.ElementSize(type), dtype: type);
                    buffers[i] = pageable.pin_memory().DetachFromDisposeScope();
                }

                _buffers.Add(type, buffers);
            }

            return buffers[set * Readers + slot];
        }

        /// <summary>Each tensor cut into pieces of at most one staging buffer, in file order.</summary>
        private static List<Chunk> Chunks(List<(SafetensorsTensor Entry, Tensor Target)> targets)
        {
            var chunks = new List<Chunk>();
            for (var t = 0; t < targets.Count; t++)
            {
                var entry = targets[t].Entry;
                var perChunk = ChunkBytes / entry.ElementSize;
                for (var first = 0L; first < entry.Elements; first += perChunk)
                {
                    var elements = Math.Min(perChunk, entry.Elements - first);
                    chunks.Add(new Chunk(t, entry.Name, entry.Type, entry.Offset + first * entry.ElementSize, first, elements));
                }
            }

            return chunks;
        }

        private readonly record struct Chunk(int Target, string Name, ScalarType Type, long Offset, long FirstElement, long Elements);
    }
}
