using System.Runtime.InteropServices;
using FalHints.Client.Contracts;
using FalHints.Runner.Models;
using FalHints.Runner.Pipelines.Weights;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace FalHints.Runner.Pipelines;

/// <summary>How a pipeline's weights are read from the model store.</summary>
public enum WeightLoader
{
    /// <summary><see cref="SafetensorsLoader"/>: no initial weights, the header checked, large reads straight into tensor memory.</summary>
    Direct,

    /// <summary>
    /// TorchSharp.PyBridge's <c>load_safetensors</c> into a randomly initialised network, then moved to the device: the
    /// loader FalHints used first, kept so that benchmarks can run it beside <see cref="Direct"/>.
    /// </summary>
    PyBridge,
}

/// <summary>
/// A loaded demo text-to-image model on one device. Call every member on the device's thread
/// (see <see cref="Devices.DeviceExecutor"/>).
/// </summary>
public sealed class TextToImagePipeline : ITieredPipeline
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
        _net.eval();
    }

    /// <summary>The model id this pipeline was loaded from.</summary>
    public string ModelId { get; }

    /// <summary>The model's configuration.</summary>
    public TextToImageConfig Config { get; }

    /// <summary>Size of the weights held, in bytes.</summary>
    public long WeightBytes { get; }

    /// <summary>
    /// Guards LibTorch's global random generator while a network is built with initial weights: seeded weights are only
    /// reproducible when no other thread draws from it between the seed and the draws.
    /// </summary>
    private static readonly Lock RandomInit = new();

    /// <summary>Reads a model from the store and places it on <paramref name="device"/>.</summary>
    /// <exception cref="ModelStoreException">The configuration or the weights are corrupt or truncated (<c>model_corrupt</c>), or the
    /// model left the store (<c>model_not_found</c>).</exception>
    /// <exception cref="PipelineCacheException">The device ran out of memory (<c>insufficient_memory</c>).</exception>
    public static TextToImagePipeline Load(StoredModel model, Device device, WeightLoader loader = WeightLoader.Direct)
    {
        var config = TextToImageConfig.Read(model);
        TextToImageNet Build(Device on) => new(config, on);
        try
        {
            var net = loader == WeightLoader.PyBridge
                ? LoadWithPyBridge(model, Build, device)
                : SafetensorsLoader.Load(model.WeightsPath, Build, device);
            return new TextToImagePipeline(model.Id, config, net, device, model.WeightBytes);
        }
        catch (WeightsFormatException ex)
        {
            throw new ModelStoreException(ErrorCodes.ModelCorrupt, $"Model '{model.Id}' has unreadable weights ({ModelStore.WeightsFileName}): {ex.Message}.", ex);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new ModelStoreException(ErrorCodes.ModelNotFound, $"Model '{model.Id}' left the model store while it was being loaded.", ex);
        }
        catch (IOException ex)
        {
            throw new ModelStoreException(ErrorCodes.ModelCorrupt, $"Model '{model.Id}' has unreadable weights ({ModelStore.WeightsFileName}): {ex.Message}", ex);
        }
        catch (ExternalException ex) when (ex.Message.Contains("out of memory", StringComparison.OrdinalIgnoreCase))
        {
            throw new PipelineCacheException($"'{model.Id}' does not fit the memory left on {device}: {ex.Message}");
        }
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

    /// <inheritdoc />
    public IWarmPipeline ToHost() => new Warm(this, HostWeights.CopyOf(_net));

    /// <summary>Releases the weights.</summary>
    public void Dispose() => _net.Dispose();

    private static TextToImageNet LoadWithPyBridge(StoredModel model, Func<Device, TextToImageNet> build, Device device)
    {
        // The header is checked first, so that a corrupt one is an error rather than an allocation of its claimed size.
        _ = SafetensorsLoader.Check(model.WeightsPath, build);
        TextToImageNet net;
        lock (RandomInit)
        {
            // Construction draws the initial (soon replaced) weights from LibTorch's global generator.
            net = build(CPU);
        }

        try
        {
            net.load_safetensors(model.WeightsPath);
            net.to(device);
            return net;
        }
        catch (Exception ex) when (ex is not (OutOfMemoryException or IOException or ExternalException))
        {
            net.Dispose();
            throw new WeightsFormatException(ex.Message);
        }
        catch
        {
            net.Dispose();
            throw;
        }
    }

    /// <summary>A pipeline's weights in host memory, with what it takes to rebuild it on its device.</summary>
    private sealed class Warm(TextToImagePipeline pipeline, HostWeights weights) : IWarmPipeline
    {
        private readonly string _modelId = pipeline.ModelId;
        private readonly TextToImageConfig _config = pipeline.Config;
        private readonly Device _device = pipeline._device;
        private readonly long _weightBytes = pipeline.WeightBytes;

        public long HostBytes => weights.Bytes;

        public ITieredPipeline ToDevice()
        {
            try
            {
                return new TextToImagePipeline(_modelId, _config, weights.ToDevice(on => new TextToImageNet(_config, on), _device), _device, _weightBytes);
            }
            catch (ExternalException ex) when (ex.Message.Contains("out of memory", StringComparison.OrdinalIgnoreCase))
            {
                throw new PipelineCacheException($"'{_modelId}' does not fit the memory left on {_device}: {ex.Message}");
            }
        }

        public void Dispose() => weights.Dispose();
    }
}
