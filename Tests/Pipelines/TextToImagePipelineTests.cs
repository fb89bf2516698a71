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
    public void Truncated_weights_are_a_clear_model_corrupt_error()
    {
        using var directory = new TempDirectory();
        var store = new ModelStore(directory.Path);
        DemoModels.Fill(store, [new DemoModelSpec("bad/truncated", 256 << 10)]);
        var weights = Path.Combine(directory.Path, "bad/truncated", ModelStore.WeightsFileName);
        File.WriteAllBytes(weights, File.ReadAllBytes(weights)[..^1000]);

        var error = Assert.Throws<ModelStoreException>(() => TextToImagePipeline.Load(store.Resolve("bad/truncated"), TorchSharp.torch.CPU));

        Assert.Equal(ErrorCodes.ModelCorrupt, error.Code);
        Assert.Contains("truncated", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Garbage_weights_are_a_clear_model_corrupt_error()
    {
        using var directory = new TempDirectory();
        var store = new ModelStore(directory.Path);
        DemoModels.Fill(store, [new DemoModelSpec("bad/garbage", 256 << 10)]);
        var weights = Path.Combine(directory.Path, "bad/garbage", ModelStore.WeightsFileName);
        var bytes = File.ReadAllBytes(weights);
        Random.Shared.NextBytes(bytes.AsSpan(0, 64));
        File.WriteAllBytes(weights, bytes);

        var error = Assert.Throws<ModelStoreException>(() => TextToImagePipeline.Load(store.Resolve("bad/garbage"), TorchSharp.torch.CPU));

        Assert.Equal(ErrorCodes.ModelCorrupt, error.Code);
        Assert.Contains("'bad/garbage'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Config_of_another_architecture_is_refused()
    {
        using var directory = new TempDirectory();
        var store = new ModelStore(directory.Path);
        DemoModels.Fill(store, [new DemoModelSpec("bad/arch", 256 << 10)]);
        var config = Path.Combine(directory.Path, "bad/arch", ModelStore.ConfigFileName);
        File.WriteAllText(config, File.ReadAllText(config).Replace(TextToImageConfig.ArchitectureName, "other", StringComparison.Ordinal));

        var error = Assert.Throws<ModelStoreException>(() => TextToImagePipeline.Load(store.Resolve("bad/arch"), TorchSharp.torch.CPU));

        Assert.Equal(ErrorCodes.ModelCorrupt, error.Code);
        Assert.Contains("architecture 'other'", error.Message, StringComparison.Ordinal);
    }
}
