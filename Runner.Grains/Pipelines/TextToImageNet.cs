using TorchSharp.Modules;
using static TorchSharp.torch;

namespace FalHints.Runner.Pipelines;

/// <summary>
/// A small text-to-image network: the prompt's token embeddings condition a conv net that denoises a
/// seeded latent for a few steps; the latent is upsampled and mapped to RGB. Built on the meta device, it has its
/// shapes and nothing else: no memory, no random initial weights (the weights loader builds it so, then fills it).
/// </summary>
internal sealed class TextToImageNet : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly TokenEmbedding embed;
    private readonly Linear condition;
    private readonly Conv2d conv_in;
    private readonly ModuleList<Conv2d> blocks;
    private readonly Conv2d conv_out;
    private readonly Conv2d to_rgb;
    private readonly TextToImageConfig _config;

    /// <summary>Builds the network with its tensors on <paramref name="device"/> (default the CPU), randomly initialised unless that is the meta device.</summary>
    public TextToImageNet(TextToImageConfig config, Device? device = null)
        : base(nameof(TextToImageNet))
    {
        _config = config;
        embed = new TokenEmbedding(config.VocabSize, config.EmbedDim, device);
        condition = nn.Linear(config.EmbedDim, config.HiddenChannels, device: device);
        conv_in = nn.Conv2d(config.LatentChannels, config.HiddenChannels, 3, padding: 1, device: device);
        blocks = nn.ModuleList(Enumerable.Range(0, config.Layers)
            .Select(_ => nn.Conv2d(config.HiddenChannels, config.HiddenChannels, 3, padding: 1, device: device)).ToArray());
        conv_out = nn.Conv2d(config.HiddenChannels, config.LatentChannels, 3, padding: 1, device: device);
        to_rgb = nn.Conv2d(config.LatentChannels, 3, 3, padding: 1, device: device);
        RegisterComponents();
    }

    /// <summary>Tokens <c>[n]</c> and noise <c>[1, C, L, L]</c> to an image <c>[3, S, S]</c> in [0, 1].</summary>
    public override Tensor forward(Tensor tokens, Tensor noise)
    {
        var prompt = embed.forward(tokens).mean([0], keepdim: true);
        var bias = condition.forward(prompt).view(1, _config.HiddenChannels, 1, 1);
        var latent = noise;
        for (var step = 0; step < _config.Steps; step++)
        {
            var hidden = nn.functional.silu(conv_in.forward(latent) + bias);
            foreach (var block in blocks)
            {
                hidden = nn.functional.silu(block.forward(hidden)) + hidden;
            }

            latent = latent - conv_out.forward(hidden) / _config.Steps;
        }

        var upsampled = nn.functional.interpolate(latent, size: [_config.ImageSize, _config.ImageSize], mode: InterpolationMode.Bilinear, align_corners: false);
        var rgb = to_rgb.forward(upsampled).squeeze(0);
        var low = rgb.amin([1, 2], keepdim: true);
        var high = rgb.amax([1, 2], keepdim: true);
        return (rgb - low) / (high - low + 1e-6);
    }
}
