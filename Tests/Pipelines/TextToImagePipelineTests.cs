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
