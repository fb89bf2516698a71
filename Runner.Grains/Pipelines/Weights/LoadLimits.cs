using System.Diagnostics;
using FalHints.Runner.Devices;
using static TorchSharp.torch;

namespace FalHints.Runner.Pipelines.Weights;

/// <summary>
/// What the machine itself allows for moving a model's bytes, to measure a load against in the same run
/// (<c>falhints smoke</c> prints them side by side): reading the file from the page cache into fresh memory, writing
/// fresh memory, and copying pinned host memory to a CUDA device. Fresh memory comes from LibTorch's allocator, as a
/// loaded tensor's does, and is released after each measure, so every measure pays for new pages.
/// </summary>
public static class LoadLimits
{
    private const int SpanBytes = 1 << 30;

    /// <summary>
    /// Reads <paramref name="length"/> bytes of <paramref name="path"/> from <paramref name="offset"/> into fresh memory,
    /// 16 MB per read, backed by huge pages when <paramref name="hugePages"/> (as the loader's tensors are).
    /// </summary>
    public static TimeSpan PageCacheRead(string path, long offset, long length, bool hugePages)
    {
        var clock = Stopwatch.StartNew();
        using var buffer = ReadBytes(path, offset, length, hugePages);
        return clock.Elapsed;
    }

    /// <summary>The bytes <c>[offset, offset + length)</c> of <paramref name="path"/>, read into fresh memory 16 MB per read.</summary>
    public static Tensor ReadBytes(string path, long offset, long length, bool hugePages = false)
    {
        using var file = File.OpenHandle(path);
        var buffer = empty(length, dtype: ScalarType.Byte);
        try
        {
            ForEachSpan(buffer, length, (span, start) =>
            {
                if (hugePages)
                {
                    HugePages.Advise(SafetensorsLoader.AddressOf(span), span.Length);
                }

                for (var done = 0; done < span.Length; done += SafetensorsLoader.ChunkBytes)
                {
                    var part = span.Slice(done, Math.Min(SafetensorsLoader.ChunkBytes, span.Length - done));
                    SafetensorsHeader.ReadExactly(file, part, offset + start + done, "the weights");
                }
            });
            return buffer;
        }
        catch
        {
            buffer.Dispose();
            throw;
        }
    }

    /// <summary>Copies <paramref name="source"/> (a CPU tensor of bytes) into fresh memory with one thread, in 4 KiB pages.</summary>
    public static TimeSpan CopyIntoFreshMemory(Tensor source)
    {
        var length = source.NumberOfElements;
        using var flat = source.view(-1);
        var clock = Stopwatch.StartNew();
        using var target = empty(length, dtype: ScalarType.Byte);
        ForEachSpan(target, length, (span, start) =>
        {
            using var from = flat.narrow(0, start, span.Length);
            from.bytes.CopyTo(span);
        });
        return clock.Elapsed;
    }

    /// <summary>
    /// Times copies of <paramref name="length"/> bytes from pinned host memory to <paramref name="device"/> (allocated
    /// before the clock starts, as a warm runner's buffers are), one per repeat.
    /// </summary>
    public static IReadOnlyList<TimeSpan> PinnedHostToDevice(long length, Device device, int repeats)
    {
        using var pageable = empty(length, dtype: ScalarType.Byte);
        using var pinned = pageable.pin_memory();
        using var target = empty(length, dtype: ScalarType.Byte, device: device);
        target.copy_(pinned, nonBlocking: true);
        cuda.synchronize(device);
        var times = new List<TimeSpan>();
        for (var i = 0; i < repeats; i++)
        {
            var clock = Stopwatch.StartNew();
            target.copy_(pinned, nonBlocking: true);
            cuda.synchronize(device);
            times.Add(clock.Elapsed);
        }

        return times;
    }

    /// <summary>Gigabytes (10^9 bytes) per second.</summary>
    public static double GigabytesPerSecond(long bytes, TimeSpan elapsed) => elapsed <= TimeSpan.Zero ? 0 : bytes / elapsed.TotalSeconds / 1e9;

    private static void ForEachSpan(Tensor bytes, long length, SpanAction act)
    {
        using var flat = bytes.view(-1);
        for (var start = 0L; start < length; start += SpanBytes)
        {
            using var part = flat.narrow(0, start, Math.Min(SpanBytes, length - start));
            act(part.bytes, start);
        }
    }

    private delegate void SpanAction(Span<byte> span, long start);
}
