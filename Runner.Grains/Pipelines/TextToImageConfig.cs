using System.Text.Json;
using FalHints.Client.Contracts;
using FalHints.Client.Requests;
using FalHints.Runner.Models;

namespace FalHints.Runner.Pipelines;

/// <summary>
/// The <c>config.json</c> of a demo text-to-image model. The embedding table (vocabulary × width)
/// holds most of the weights, so <see cref="VocabSize"/> sets the model's size.
/// </summary>
public sealed record TextToImageConfig(
    string Architecture,
    int VocabSize,
    int EmbedDim,
    int HiddenChannels,
    int Layers,
    int LatentChannels,
    int LatentSize,
    int ImageSize,
    int Steps,
    long Seed)
{
    /// <summary>The only architecture this pipeline reads.</summary>
    public const string ArchitectureName = "falhints-t2i-v1";

    /// <summary>Weight bytes of a model of this shape (float32).</summary>
    public long WeightBytes =>
        4L * ((long)VocabSize * EmbedDim
            + ((long)EmbedDim * HiddenChannels + HiddenChannels)
            + ((long)LatentChannels * HiddenChannels * 9 + HiddenChannels)
            + (long)Layers * ((long)HiddenChannels * HiddenChannels * 9 + HiddenChannels)
            + ((long)HiddenChannels * LatentChannels * 9 + LatentChannels)
            + (3L * LatentChannels * 9 + 3));

    /// <summary>A demo shape whose weights come to about <paramref name="targetBytes"/>.</summary>
    public static TextToImageConfig ForSize(long targetBytes, long seed)
    {
        var shape = new TextToImageConfig(ArchitectureName, VocabSize: 1, EmbedDim: 256, HiddenChannels: 48, Layers: 2,
            LatentChannels: 4, LatentSize: 16, ImageSize: 128, Steps: 4, Seed: seed);
        var rest = shape.WeightBytes - 4L * shape.EmbedDim;
        var vocab = Math.Max(64L, (targetBytes - rest) / (4L * shape.EmbedDim));
        if (vocab > int.MaxValue / shape.EmbedDim)
        {
            throw new ArgumentOutOfRangeException(nameof(targetBytes), targetBytes, "Demo models are limited to 2 GiB.");
        }

        return shape with { VocabSize = (int)vocab };
    }

    /// <summary>Reads and checks a model's configuration.</summary>
    /// <exception cref="ModelStoreException">The file is unreadable or describes a model this pipeline cannot run.</exception>
    public static TextToImageConfig Read(StoredModel model)
    {
        TextToImageConfig? config;
        try
        {
            config = JsonSerializer.Deserialize<TextToImageConfig>(File.ReadAllText(model.ConfigPath), FalJson.Options);
        }
        catch (Exception ex) when (ex is JsonException or IOException)
        {
            throw new ModelStoreException(ErrorCodes.ModelCorrupt, $"Model '{model.Id}' has an unreadable {ModelStore.ConfigFileName}: {ex.Message}", ex);
        }

        var problem = config switch
        {
            null => "it is empty",
            { Architecture: not ArchitectureName } => $"architecture '{config.Architecture}' is not '{ArchitectureName}'",
            { VocabSize: < 1 } or { EmbedDim: < 1 or > 4096 } or { HiddenChannels: < 1 or > 1024 } or { Layers: < 0 or > 64 }
                or { LatentChannels: < 1 or > 64 } or { LatentSize: < 4 or > 256 } or { Steps: < 1 or > 100 } => "a dimension is out of range",
            { ImageSize: < 8 or > 1024 } => "image_size is out of range",
            _ when config.ImageSize % config.LatentSize != 0 => "image_size is not a multiple of latent_size",
            _ => null,
        };
        if (problem is not null)
        {
            throw new ModelStoreException(ErrorCodes.ModelCorrupt, $"Model '{model.Id}' has an invalid {ModelStore.ConfigFileName}: {problem}.");
        }

        return config!;
    }

    /// <summary>Writes this configuration as <c>config.json</c>.</summary>
    public void Write(string path) => File.WriteAllText(path, JsonSerializer.Serialize(this, FalJson.Options));
}
