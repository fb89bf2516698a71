using Microsoft.Win32.SafeHandles;
using TorchSharp;
using static TorchSharp.torch;

namespace FalHints.Runner.Pipelines.Weights;

/// <summary>
/// Fills a module's tensors from a weights file through staging buffers in host memory: on CUDA pinned ones, so that
/// copies to the device run without blocking at the link's speed. Tensors are cut into chunks of one buffer; a batch of
/// chunks is read by several readers at once into one set of buffers while the previous batch is copied out of the
/// other set. TorchSharp has no CUDA events, so a device synchronisation marks a set free again. Buffers are allocated
/// per element type on first use and kept; use one reader per device thread. On the CPU (where loads read straight into
/// the tensors instead) it runs the same steps with plain buffers, so that tests can follow them.
/// </summary>
internal sealed class StagedReader(int chunkBytes, int readers) : IDisposable
{
    /// <summary>Readers per batch: a quarter of the cores, one to four.</summary>
    public static readonly int DefaultReaders = Math.Clamp(Environment.ProcessorCount / 4, 1, 4);

    private readonly Dictionary<ScalarType, Tensor[]> _buffers = [];

    /// <summary>Fills each target with its entry's bytes; call on the device's thread.</summary>
    public void Fill(SafeFileHandle file, List<(SafetensorsTensor Entry, Tensor Target)> targets, Device device)
    {
        var onCuda = device.type == DeviceType.CUDA;
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
            pending = ReadBatchAsync(file, chunks, 0, set, onCuda);
            for (var first = 0; first < chunks.Count; first += readers)
            {
                pending.GetAwaiter().GetResult();
                // The copies out of the other set, issued one batch ago, must be done before readers refill it.
                Synchronize(onCuda, device);
                pending = first + readers < chunks.Count ? ReadBatchAsync(file, chunks, first + readers, 1 - set, onCuda) : Task.CompletedTask;
                for (var i = first; i < Math.Min(first + readers, chunks.Count); i++)
                {
                    var chunk = chunks[i];
                    using var target = flats[chunk.Target].narrow(0, chunk.FirstElement, chunk.Elements);
                    using var source = Buffer(chunk.Type, set, i - first, onCuda).narrow(0, 0, chunk.Elements);
                    target.copy_(source, nonBlocking: onCuda);
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
            Synchronize(onCuda, device);
            foreach (var flat in flats)
            {
                flat.Dispose();
            }
        }
    }

    /// <summary>Releases the buffers.</summary>
    public void Dispose()
    {
        foreach (var buffer in _buffers.Values.SelectMany(b => b))
        {
            buffer.Dispose();
        }

        _buffers.Clear();
    }

    private static void Synchronize(bool onCuda, Device device)
    {
        if (onCuda)
        {
            cuda.synchronize(device);
        }
    }

    private Task ReadBatchAsync(SafeFileHandle file, List<Chunk> chunks, int first, int set, bool pinned)
    {
        var count = Math.Min(readers, chunks.Count - first);
        var work = new (nint Address, int Length, long Offset, string Name)[count];
        for (var i = 0; i < count; i++)
        {
            var chunk = chunks[first + i];
            var span = Buffer(chunk.Type, set, i, pinned).bytes;
            work[i] = (SafetensorsLoader.AddressOf(span), (int)(chunk.Elements * SafetensorsHeader.ElementSize(chunk.Type)), chunk.Offset, chunk.Name);
        }

        return Task.WhenAll(work.Select(w => Task.Run(() => ReadInto(file, w))));
    }

    private static unsafe void ReadInto(SafeFileHandle file, (nint Address, int Length, long Offset, string Name) work) =>
        SafetensorsHeader.ReadExactly(file, new Span<byte>((void*)work.Address, work.Length), work.Offset, $"tensor '{work.Name}'");

    private Tensor Buffer(ScalarType type, int set, int slot, bool pinned)
    {
        if (!_buffers.TryGetValue(type, out var buffers))
        {
            buffers = new Tensor[2 * readers];
            for (var i = 0; i < buffers.Length; i++)
            {
                var elements = chunkBytes / SafetensorsHeader.ElementSize(type);
                if (pinned)
                {
                    // TorchSharp's factories take no pin_memory flag: allocate, then pin.
                    using var pageable = empty(elements, dtype: type);
                    buffers[i] = pageable.pin_memory().DetachFromDisposeScope();
                }
                else
                {
                    buffers[i] = empty(elements, dtype: type).DetachFromDisposeScope();
                }
            }

            _buffers.Add(type, buffers);
        }

        return buffers[set * readers + slot];
    }

    /// <summary>Each tensor cut into pieces of at most one staging buffer, in file order.</summary>
    private List<Chunk> Chunks(List<(SafetensorsTensor Entry, Tensor Target)> targets)
    {
        var chunks = new List<Chunk>();
        for (var t = 0; t < targets.Count; t++)
        {
            var entry = targets[t].Entry;
            var perChunk = chunkBytes / entry.ElementSize;
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
