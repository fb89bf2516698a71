using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using FalHints.Host.Hosting;
using FalHints.Runner.Devices;
using FalHints.Runner.Models;
using FalHints.Runner.Pipelines;
using FalHints.Runner.Pipelines.Weights;
using TorchSharp;

namespace FalHints.Host.Commands;

/// <summary>
/// <c>falhints smoke</c>: checks that TorchSharp runs on this machine's device: writes one demo model of the given size,
/// loads it onto the device, renders images and prints load and inference times. The load is measured against the
/// machine's limits in the same run (reading the same file from the page cache into fresh memory, writing fresh memory,
/// on CUDA a pinned host-to-device copy of the same bytes), against the previous loader, and on CUDA the host tier's
/// demotion and promotion are timed too; each figure is the median of <c>--repeat</c> runs, taken in turn.
/// </summary>
internal static class SmokeCommand
{
    public static Command Create()
    {
        var device = new Option<string?>("--device") { Description = "cuda:N or cpu:N (default: cuda:0 when CUDA is available, else cpu:0)." };
        var size = new Option<string>("--size") { Description = "Weights of the model to load, e.g. 512MB.", DefaultValueFactory = _ => "64MB" };
        var renders = new Option<int>("--renders") { Description = "Images to render after one warm-up.", DefaultValueFactory = _ => 10 };
        var repeat = new Option<int>("--repeat") { Description = "Runs of each load and limit measured; medians are printed.", DefaultValueFactory = _ => 5 };
        var output = new Option<FileInfo>("--out") { Description = "Where to write the last image.", DefaultValueFactory = _ => new FileInfo("smoke.png") };
        var command = new Command("smoke", "Load one model onto a device, render images, print load and inference times beside the machine's limits.")
        {
            device, size, renders, repeat, output,
        };
        command.SetAction(parse =>
        {
            long bytes;
            try
            {
                bytes = ByteSize.Parse(parse.GetValue(size)!);
            }
            catch (FormatException ex)
            {
                Console.Error.WriteLine($"error: {ex.Message}");
                return 1;
            }

            var chosen = parse.GetValue(device) ?? (torch.cuda.is_available() ? "cuda:0" : "cpu:0");
            if (!DeviceNames.IsValid(chosen))
            {
                Console.Error.WriteLine($"error: '{chosen}' is not a device; use cuda:N or cpu:N.");
                return 1;
            }

            if (parse.GetValue(repeat) is < 1 or > 100)
            {
                Console.Error.WriteLine("error: --repeat must be between 1 and 100.");
                return 1;
            }

            return Run(chosen, bytes, Math.Max(1, parse.GetValue(renders)), parse.GetValue(repeat), parse.GetValue(output)!);
        });
        return command;
    }

    private static int Run(string device, long bytes, int renders, int repeat, FileInfo output)
    {
        var cuda = torch.cuda.is_available();
        Console.WriteLine($"cuda available: {cuda}, cuda devices: {(cuda ? torch.cuda.device_count() : 0)}, device: {device}");
        var onCuda = device.StartsWith("cuda:", StringComparison.Ordinal);
        if (onCuda && !cuda)
        {
            Console.Error.WriteLine("error: CUDA is not available to TorchSharp here.");
            return 1;
        }

        var root = Path.Combine(Path.GetTempPath(), $"falhints-smoke-{Guid.NewGuid():N}");
        try
        {
            var store = new ModelStore(root);
            var clock = Stopwatch.StartNew();
            DemoModels.Fill(store, [new DemoModelSpec("smoke/model", bytes)]);
            var model = store.Resolve("smoke/model");
            Console.WriteLine($"wrote {ByteSize.Format(model.WeightBytes)} of weights in {clock.Elapsed.TotalMilliseconds:0} ms");

            using var executor = new DeviceExecutor(device);
            var torchDevice = DeviceNames.ToTorch(device);
            var (figures, renderMs, png) = executor.RunAsync(() => Measure(model, torchDevice, onCuda, renders, repeat)).GetAwaiter().GetResult();
            File.WriteAllBytes(output.FullName, png);
            Print(device, figures, renders, renderMs);
            Console.WriteLine($"wrote {output.FullName} ({png.Length} bytes)");
            return 0;
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    /// <summary>Runs on the device thread: each measure in turn, <paramref name="repeat"/> times, then the renders.</summary>
    private static (Figures Figures, double RenderMs, byte[] Png) Measure(StoredModel model, torch.Device device, bool onCuda, int renders, int repeat)
    {
        SafetensorsHeader header;
        using (var file = File.OpenHandle(model.WeightsPath))
        {
            header = SafetensorsHeader.Read(file);
        }

        var length = header.FileLength - header.DataStart;
        var figures = new Figures(length);

        // Warm-up: the file into the page cache (and a copy to copy from), code compiled, allocators primed.
        using var source = LoadLimits.ReadBytes(model.WeightsPath, header.DataStart, length);
        TextToImagePipeline.Load(model, device).Dispose();
        TextToImagePipeline? pipeline = null;
        for (var run = 0; run < repeat; run++)
        {
            figures.PageCache4K.Add(LoadLimits.PageCacheRead(model.WeightsPath, header.DataStart, length, hugePages: false));
            figures.PageCacheHuge.Add(LoadLimits.PageCacheRead(model.WeightsPath, header.DataStart, length, hugePages: true));
            figures.FreshCopy.Add(LoadLimits.CopyIntoFreshMemory(source));
            figures.Previous.Add(Time(() => TextToImagePipeline.Load(model, device, WeightLoader.PyBridge).Dispose()));
            pipeline?.Dispose();
            figures.Load.Add(Time(() => pipeline = TextToImagePipeline.Load(model, device)));
            if (onCuda)
            {
                IWarmPipeline warm = null!;
                figures.Demotion.Add(Time(() => warm = pipeline!.ToHost()));
                pipeline!.Dispose();
                figures.Promotion.Add(Time(() => pipeline = (TextToImagePipeline)warm.ToDevice()));
                warm.Dispose();
            }
        }

        if (onCuda)
        {
            figures.PinnedToDevice.AddRange(LoadLimits.PinnedHostToDevice(length, device, repeat));
        }

        using var loaded = pipeline!;
        loaded.Render("warm-up");
        var times = new List<double>();
        RgbImage image = null!;
        for (var i = 0; i < renders; i++)
        {
            var render = Stopwatch.StartNew();
            image = loaded.Render($"a red fox {i}");
            times.Add(render.Elapsed.TotalMilliseconds);
        }

        times.Sort();
        return (figures, times[times.Count / 2], image.EncodePng());
    }

    private static TimeSpan Time(Action act)
    {
        var clock = Stopwatch.StartNew();
        act();
        return clock.Elapsed;
    }

    private static void Print(string device, Figures f, int renders, double renderMs)
    {
        var load = Median(f.Load);
        string Row(string what, TimeSpan elapsed, string? note = null) => string.Create(CultureInfo.InvariantCulture,
            $"  {what,-62} {elapsed.TotalMilliseconds,9:0.0} ms {LoadLimits.GigabytesPerSecond(f.Bytes, elapsed),7:0.00} GB/s{(note is null ? "" : "  " + note)}");
        string Ratio(TimeSpan elapsed) => string.Create(CultureInfo.InvariantCulture, $"{load.TotalMilliseconds / elapsed.TotalMilliseconds:0.00}x");

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"medians of {f.Load.Count} runs, {f.Bytes:N0} bytes of tensors each:"));
        Console.WriteLine(Row("page-cache read into fresh memory, 16 MB reads, 4 KiB pages", Median(f.PageCache4K)));
        Console.WriteLine(Row("page-cache read into fresh memory, 16 MB reads, huge pages", Median(f.PageCacheHuge)));
        Console.WriteLine(Row("copy into fresh memory, 4 KiB pages", Median(f.FreshCopy)));
        if (f.PinnedToDevice.Count > 0)
        {
            Console.WriteLine(Row($"pinned host-to-device copy to {device}", Median(f.PinnedToDevice)));
        }

        Console.WriteLine(Row($"load to {device}", load,
            $"{Ratio(Median(f.PageCache4K))} the 4 KiB-page read, {Ratio(Median(f.PageCacheHuge))} the huge-page read"));
        var previous = Median(f.Previous);
        Console.WriteLine(Row($"load to {device} with the previous loader (TorchSharp.PyBridge)", previous,
            string.Create(CultureInfo.InvariantCulture, $"{previous.TotalMilliseconds / load.TotalMilliseconds:0.0}x the load's time")));
        if (f.Promotion.Count > 0)
        {
            Console.WriteLine(Row("host tier: demotion (device to pinned host memory)", Median(f.Demotion)));
            Console.WriteLine(Row("host tier: promotion (pinned host memory to device)", Median(f.Promotion),
                string.Create(CultureInfo.InvariantCulture, $"{load.TotalMilliseconds / Median(f.Promotion).TotalMilliseconds:0.0}x faster than the load")));
        }
        else
        {
            Console.WriteLine("  host tier: none on CPU runners (their weights are in host memory already; the page cache keeps the files)");
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"load to {device}: {load.TotalMilliseconds:0.0} ms; render median of {renders}: {renderMs:0.00} ms; load/render: {load.TotalMilliseconds / renderMs:0}x"));
    }

    private static TimeSpan Median(List<TimeSpan> times) => times.Order().ElementAt(times.Count / 2);

    private sealed record Figures(long Bytes)
    {
        public List<TimeSpan> PageCache4K { get; } = [];

        public List<TimeSpan> PageCacheHuge { get; } = [];

        public List<TimeSpan> FreshCopy { get; } = [];

        public List<TimeSpan> PinnedToDevice { get; } = [];

        public List<TimeSpan> Load { get; } = [];

        public List<TimeSpan> Previous { get; } = [];

        public List<TimeSpan> Demotion { get; } = [];

        public List<TimeSpan> Promotion { get; } = [];
    }
}
