using FalHints.Client.Contracts;
using FalHints.Runner.Models;
using FalHints.Runner.Pipelines;
using FalHints.Tests.Support;

namespace FalHints.Tests.Pipelines;

public sealed class TextToImagePipelineTests : IClassFixture<TinyModelStore>
{
    private readonly TinyModelStore _fixture;

    public TextToImagePipelineTests(TinyModelStore fixture) => _fixture = fixture;

    private byte[] Render(string modelId, string prompt)
    {
        using var pipeline = TextToImagePipeline.Load(_fixture.Store.Resolve(modelId), TorchSharp.torch.CPU);
        return pipeline.Render(prompt).EncodePng();
    }

    [Fact]
    public void Renders_a_valid_png_of_the_configured_size()
    {
        var (width, height) = Png.AssertValid(Render("tiny/alpha", "a red fox"));

        Assert.Equal((128, 128), (width, height));
    }

    [Fact]
    public void Same_model_and_prompt_give_the_same_image()
    {
        Assert.Equal(Render("tiny/alpha", "a red fox"), Render("tiny/alpha", "a red fox"));
    }

    [Fact]
    public void Image_depends_on_prompt_and_model()
    {
        var reference = Render("tiny/alpha", "a red fox");

        Assert.NotEqual(reference, Render("tiny/alpha", "a blue whale"));
        Assert.NotEqual(reference, Render("tiny/beta", "a red fox"));
    }

    private RgbImage RenderImage(string modelId, string prompt)
    {
        using var pipeline = TextToImagePipeline.Load(_fixture.Store.Resolve(modelId), TorchSharp.torch.CPU);
        return pipeline.Render(prompt);
    }

    /// <summary>Mean absolute difference between horizontally adjacent pixel values (0-255): about 85 for uniform noise.</summary>
    private static double Roughness(RgbImage image)
    {
        var total = 0.0;
        for (var y = 0; y < image.Height; y++)
        {
            for (var x = 3; x < image.Width * 3; x++)
            {
                var at = (y * image.Width * 3) + x;
                total += Math.Abs(image.Pixels[at] - image.Pixels[at - 3]);
            }
        }

        return total / (image.Height * (image.Width - 1) * 3);
    }

    private static double MeanDifference(RgbImage a, RgbImage b) => a.Pixels.Zip(b.Pixels).Average(p => Math.Abs(p.First - p.Second));

    [Fact]
    public void Images_are_smooth_shapes_with_a_range_of_colours_not_noise()
    {
        foreach (var image in new[] { RenderImage("tiny/alpha", "a red fox"), RenderImage("tiny/beta", "a lighthouse at dusk") })
        {
            var mean = image.Pixels.Average(p => (double)p);
            var spread = Math.Sqrt(image.Pixels.Average(p => (p - mean) * (p - mean)));

            Assert.True(Roughness(image) < 8, $"neighbouring pixels differ by {Roughness(image):0.0} on average; noise gives about 85");
            Assert.True(spread > 40, $"the pixel values spread only {spread:0.0}: a flat image");
        }
    }

    [Fact]
    public void Images_differ_visibly_between_prompts_and_between_models()
    {
        var reference = RenderImage("tiny/alpha", "a red fox");

        Assert.True(MeanDifference(reference, RenderImage("tiny/alpha", "a blue whale")) > 30, "another prompt gives nearly the same image");
        Assert.True(MeanDifference(reference, RenderImage("tiny/beta", "a red fox")) > 30, "another model gives nearly the same image");
    }

    [Fact]
    public void A_stepwise_render_removes_noise_step_by_step_and_ends_at_the_rendered_image()
    {
        using var pipeline = TextToImagePipeline.Load(_fixture.Store.Resolve("tiny/gamma"), TorchSharp.torch.CPU);
        using var render = pipeline.BeginRender("a red fox");
        var steps = new List<RgbImage>();
        while (render.Done < render.Steps)
        {
            steps.Add(render.Step());
        }

        Assert.Equal(pipeline.Config.Steps, steps.Count);
        Assert.True(Roughness(steps[0]) > 2 * Roughness(steps[^1]), $"roughness by step: {string.Join(", ", steps.Select(s => Roughness(s).ToString("0.0", System.Globalization.CultureInfo.InvariantCulture)))}");
        Assert.Equal(pipeline.Render("a red fox").Pixels, steps[^1].Pixels);
        Assert.Throws<InvalidOperationException>(() => render.Step());
    }

    [Fact]
    public void Pipeline_moved_to_host_memory_and_back_renders_the_same_image()
    {
        var model = _fixture.Store.Resolve("tiny/beta");
        using var original = TextToImagePipeline.Load(model, TorchSharp.torch.CPU);
        var expected = original.Render("a red fox").Pixels;

        using var warm = original.ToHost();
        original.Dispose();
        using var promoted = (TextToImagePipeline)warm.ToDevice();
        using var again = (TextToImagePipeline)warm.ToDevice();

        Assert.True(warm.HostBytes >= model.WeightBytes - 4096 && warm.HostBytes <= model.WeightBytes);
        Assert.Equal(expected, promoted.Render("a red fox").Pixels);
        Assert.Equal(expected, again.Render("a red fox").Pixels);
    }

    /// <summary>Writes a fresh model, lets <paramref name="damage"/> change one of its files, and returns the load's error.</summary>
    private static ModelStoreException LoadDamaged(string fileName, Func<byte[], byte[]> damage)
    {
        using var directory = new TempDirectory();
        var store = new ModelStore(directory.Path);
        DemoModels.Fill(store, [new DemoModelSpec("bad/model", 256 << 10)]);
        var path = Path.Combine(directory.Path, "bad/model", fileName);
        File.WriteAllBytes(path, damage(File.ReadAllBytes(path)));

        var error = Assert.Throws<ModelStoreException>(() => TextToImagePipeline.Load(store.Resolve("bad/model"), TorchSharp.torch.CPU));
        Assert.Equal(ErrorCodes.ModelCorrupt, error.Code);
        Assert.Contains("'bad/model'", error.Message, StringComparison.Ordinal);
        return error;
    }

    [Fact]
    public void Truncated_weights_are_a_clear_model_corrupt_error()
    {
        var error = LoadDamaged(ModelStore.WeightsFileName, bytes => bytes[..(bytes.Length / 2)]);

        Assert.Contains("truncated", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Garbage_weights_are_a_clear_model_corrupt_error()
    {
        var error = LoadDamaged(ModelStore.WeightsFileName, bytes =>
        {
            Random.Shared.NextBytes(bytes.AsSpan(0, 64));
            return bytes;
        });

        Assert.Contains("unreadable weights", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Config_of_another_architecture_is_refused()
    {
        var error = LoadDamaged(ModelStore.ConfigFileName, bytes => System.Text.Encoding.UTF8.GetBytes(
            System.Text.Encoding.UTF8.GetString(bytes).Replace(TextToImageConfig.ArchitectureName, "other", StringComparison.Ordinal)));

        Assert.Contains("architecture 'other'", error.Message, StringComparison.Ordinal);
    }
}
