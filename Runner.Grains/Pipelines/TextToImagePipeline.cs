using FalHints.Client.Contracts;
using FalHints.Runner.Models;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace FalHints.Runner.Pipelines;

/// <summary>
/// A loaded demo text-to-image model on one device. Call every member on the device's thread
/// (see <see cref="Devices.DeviceExecutor"/>).
/// </summary>
public sealed class TextToImagePipeline : IDisposable
{
    private readonly TextToImageNet _net;
    private readonly Device _device;

    private TextToImagePipeline(string modelId, TextToImageConfig config, TextToImageNet net, Device device, long weightBytes)
    {
        ModelId = modelId;
        Config = config;
        _net = net;
        _device = device;
        WeightBytes = weightBytes;
    }

    /// <summary>The model id this pipeline was loaded from.</summary>
    public string ModelId { get; }

    /// <summary>The model's configuration.</summary>
    public TextToImageConfig Config { get; }

    /// <summary>Size of the weights held, in bytes.</summary>
    public long WeightBytes { get; }

    /// <summary>
    /// Guards LibTorch's global random generator while a network is built: seeded weights are only reproducible when
    /// no other thread draws from it between the seed and the draws.
    /// </summary>
    private static readonly Lock RandomInit = new();

    /// <summary>Reads a model from the store and places it on <paramref name="device"/>.</summary>
    /// <exception cref="ModelStoreException">The configuration or the weights are corrupt or truncated (<c>model_corrupt</c>).</exception>
    public static TextToImagePipeline Load(StoredModel model, Device device)
    {
        var config = TextToImageConfig.Read(model);
        if (model.WeightBytes < config.WeightBytes)
        {
            throw new ModelStoreException(ErrorCodes.ModelCorrupt,
                $"Model '{model.Id}' has truncated weights: {model.WeightBytes} bytes on disk, at least {config.WeightBytes} expected.");
        }

        TextToImageNet net;
        lock (RandomInit)
        {
            // Construction draws the initial (soon replaced) weights from LibTorch's global generator.
            net = new TextToImageNet(config);
        }

        try
        {
            net.load_safetensors(model.WeightsPath);
            net.to(device);
            net.eval();
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            net.Dispose();
            throw new ModelStoreException(ErrorCodes.ModelCorrupt, $"Model '{model.Id}' has unreadable weights: {ex.Message}", ex);
        }

        return new TextToImagePipeline(model.Id, config, net, device, model.WeightBytes);
    }

    /// <summary>Creates a model of about <paramref name="config"/>'s size with seeded random weights and saves it to <paramref name="directory"/>.</summary>
    public static void WriteRandom(TextToImageConfig config, string directory)
    {
        using var scope = NewDisposeScope();
        TextToImageNet net;
        lock (RandomInit)
        {
            // Seed and draw together, so no other thread's draw from the global generator changes these weights.
            torch.random.manual_seed(config.Seed);
            net = new TextToImageNet(config);
        }

        using var _ = net;
        Directory.CreateDirectory(directory);
        net.save_safetensors(Path.Combine(directory, ModelStore.WeightsFileName));
        config.Write(Path.Combine(directory, ModelStore.ConfigFileName));
    }

    /// <summary>Renders <paramref name="prompt"/>; the same prompt and model always give the same pixels.</summary>
    public RgbImage Render(string prompt)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var (tokens, noise) = Inputs(prompt);
        return ToRgb(_net.forward(tokens, noise), Config.ImageSize);
    }

    /// <summary>Starts rendering <paramref name="prompt"/> a step at a time (its last step gives <see cref="Render"/>'s image).</summary>
    public TextToImageRender BeginRender(string prompt)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var (tokens, noise) = Inputs(prompt);
        return new TextToImageRender(_net, Config, _net.Predict(tokens).DetachFromDisposeScope(), noise.DetachFromDisposeScope());
    }

    /// <summary>An image <c>[3, S, S]</c> in [0, 1] as 8-bit RGB.</summary>
    internal static RgbImage ToRgb(Tensor image, int size)
    {
        var bytes = image.mul(255).round().clamp(0, 255).to(ScalarType.Byte).permute(1, 2, 0).contiguous().cpu();
        return new RgbImage(size, size, bytes.data<byte>().ToArray());
    }

    private (Tensor Tokens, Tensor Noise) Inputs(string prompt)
    {
        var tokens = tensor(PromptTokenizer.Encode(prompt, Config.VocabSize), dtype: ScalarType.Int64, device: _device);
        var generator = new Generator(PromptTokenizer.Seed(prompt));
        var noise = randn([1, Config.LatentChannels, Config.LatentSize, Config.LatentSize], generator: generator).to(_device);
        return (tokens, noise);
    }

    /// <summary>Releases the weights.</summary>
    public void Dispose() => _net.Dispose();
}
