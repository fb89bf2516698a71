using FalHints.Benchmarks;
using FalHints.Benchmarks.Reporting;
using FalHints.Runner.Pipelines;
using FalHints.Tests.Support;

namespace FalHints.Tests.Simulation;

/// <summary>The end-to-end benchmark on a tiny real node, and the plot it writes.</summary>
public sealed class EndToEndTests
{
    [Fact]
    public async Task Each_policy_serves_every_request_on_a_fresh_node_with_real_loads()
    {
        var store = Directory.CreateTempSubdirectory("falhints-e2e-test-");
        try
        {
            var settings = new EndToEnd.Settings(Runners: 2, Device: "cpu", Models: 4, ModelSize: "1MB", ModelsPerRunner: 1,
                Requests: 24, Concurrency: 1, Zipf: 1.0, Seed: 3);
            Assert.Null(settings.Validate());
            var finished = new List<string>();

            var (results, models, budget) = await EndToEnd.RunAsync(settings, ["HintAffinity", "RoundRobin"], store.FullName, r => finished.Add(r.Policy), CancellationToken.None);

            Assert.Equal<string>(["HintAffinity", "RoundRobin"], finished);
            Assert.Equal(4, models.Length);
            Assert.Equal((long)(1.1 * (1L << 20)), budget);
            foreach (var result in results)
            {
                Assert.Equal(24, result.Completed);
                Assert.Equal(0, result.Failed);
                Assert.Equal(24, result.LatenciesMs.Length);
                Assert.All(result.LatenciesMs, ms => Assert.True(ms > 0));

                // Each runner starts cold, so every model used was loaded at least once; no request loads twice.
                Assert.InRange(result.Loads, 2, 24);
                Assert.True(result.P50Ms <= result.P99Ms);
            }

            Assert.True(results[0].HitRate > 0, "hinted placement should hit the model a runner holds");
        }
        finally
        {
            store.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task Each_loader_runs_every_policy_on_the_same_requests()
    {
        var store = Directory.CreateTempSubdirectory("falhints-e2e-test-");
        try
        {
            var settings = new EndToEnd.Settings(Runners: 1, Device: "cpu", Models: 2, ModelSize: "1MB", ModelsPerRunner: 1,
                Requests: 6, Concurrency: 1, Zipf: 1.0, Seed: 3) { Loaders = [WeightLoader.PyBridge, WeightLoader.Direct] };

            var (results, _, _) = await EndToEnd.RunAsync(settings, ["HintAffinity"], store.FullName, null, CancellationToken.None);

            Assert.Equal<string>([nameof(WeightLoader.PyBridge), nameof(WeightLoader.Direct)], [.. results.Select(r => r.Loader)]);
            Assert.All(results, r => Assert.Equal((6, 0), (r.Completed, r.Failed)));
            Assert.Equal(results[0].Log.Select(q => q.Model), results[1].Log.Select(q => q.Model));
        }
        finally
        {
            store.Delete(recursive: true);
        }
    }

    [Fact]
    public void Bad_settings_are_refused_with_the_option_named()
    {
        Assert.Contains("--runners", new EndToEnd.Settings(0, "cpu", 4, "1MB", 1, 10, 1, 1, 1).Validate(), StringComparison.Ordinal);
        Assert.Contains("--device", new EndToEnd.Settings(1, "tpu", 4, "1MB", 1, 10, 1, 1, 1).Validate(), StringComparison.Ordinal);
        Assert.Contains("--model-size", new EndToEnd.Settings(1, "cpu", 4, "2GB-1GB", 1, 10, 1, 1, 1).Validate(), StringComparison.Ordinal);
        Assert.Contains("--model-size", new EndToEnd.Settings(1, "cpu", 4, "lots", 1, 10, 1, 1, 1).Validate(), StringComparison.Ordinal);
    }

    [Fact]
    public void The_plot_is_a_png_with_both_panels()
    {
        var file = Path.Combine(Path.GetTempPath(), $"falhints-plot-{Guid.NewGuid():N}.png");
        try
        {
            LatencyPlot.Write(file, "test", [new PlotSeries("a", [1, 2, 3, 50, 400], 0.8), new PlotSeries("b", [100, 200, 300], 0.2)], hitRateBound: 0.9);

            var bytes = File.ReadAllBytes(file);
            Assert.Equal((1400, 560), Png.AssertValid(bytes));

            // Coloured ink in the CDF panel (left) and in the hit-rate panel (right), not only black text.
            using var bitmap = SkiaSharp.SKBitmap.Decode(bytes);
            static bool Coloured(SkiaSharp.SKColor c) => Math.Max(c.Red, Math.Max(c.Green, c.Blue)) - Math.Min(c.Red, Math.Min(c.Green, c.Blue)) > 60;
            bool Inked(int fromX, int toX) => Enumerable.Range(fromX, toX - fromX).Any(x => Enumerable.Range(60, 420).Any(y => Coloured(bitmap.GetPixel(x, y))));
            Assert.True(Inked(90, 850), "the CDF panel has no curves");
            Assert.True(Inked(1095, 1300), "the hit-rate panel has no bars");
        }
        finally
        {
            File.Delete(file);
        }
    }
}
