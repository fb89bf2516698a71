using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using FalHints.Host.Hosting;
using FalHints.Runner.Devices;
using FalHints.Runner.Models;
using FalHints.Runner.Pipelines;
using TorchSharp;

namespace FalHints.Host.Commands;

/// <summary>
/// <c>falhints smoke</c>: checks that TorchSharp runs on this machine's device: writes one demo model of the
/// given size, loads it onto the device, renders images and prints load and inference times.
/// </summary>
internal static class SmokeCommand
{
    public static Command Create()
    {
        var device = new Option<string?>("--device") { Description = "cuda:N or cpu:N (default: cuda:0 when CUDA is available, else cpu:0)." };
        var size = new Option<string>("--size") { Description = "Weights of the model to load, e.g. 512MB.", DefaultValueFactory = _ => "64MB" };
        var renders = new Option<int>("--renders") { Description = "Images to render after one warm-up.", DefaultValueFactory = _ => 10 };
        var output = new Option<FileInfo>("--out") { Description = "Where to write the last image.", DefaultValueFactory = _ => new FileInfo("smoke.png") };
        var command = new Command("smoke", "Load one model onto a device, render images, print load and inference times.") { device, size, renders, output };
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

            return Run(chosen, bytes, Math.Max(1, parse.GetValue(renders)), parse.GetValue(output)!);
        });
        return command;
    }

    private static int Run(string device, long bytes, int renders, FileInfo output)
    {
        var cuda = torch.cuda.is_available();
        Console.WriteLine($"cuda available: {cuda}, cuda devices: {(cuda ? torch.cuda.device_count() : 0)}, device: {device}");
        if (device.StartsWith("cuda:", StringComparison.Ordinal) && !cuda)
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
            var (loadMs, renderMs, png) = executor.RunAsync(() =>
            {
                var load = Stopwatch.StartNew();
                using var pipeline = TextToImagePipeline.Load(model, DeviceNames.ToTorch(device));
                var loaded = load.Elapsed.TotalMilliseconds;
                pipeline.Render("warm-up");
                var times = new List<double>();
                RgbImage image = null!;
                for (var i = 0; i < renders; i++)
                {
                    var render = Stopwatch.StartNew();
                    image = pipeline.Render($"a red fox {i}");
                    times.Add(render.Elapsed.TotalMilliseconds);
                }

                times.Sort();
                return (loaded, times[times.Count / 2], image.EncodePng());
            }).GetAwaiter().GetResult();
            File.WriteAllBytes(output.FullName, png);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"load to {device}: {loadMs:0.0} ms; render median of {renders}: {renderMs:0.00} ms; load/render: {loadMs / renderMs:0}x"));
            Console.WriteLine($"wrote {output.FullName} ({png.Length} bytes)");
            return 0;
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }
}
