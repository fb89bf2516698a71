using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace FalHints.Runner.Pipelines;

/// <summary>
/// A small text-to-image network. The prompt's token embeddings, through <c>condition</c>, place and turn a field of
/// image coordinates and shift the phases of a conv net that maps that field to a clean latent: smooth shapes and
/// colour fields, different for every prompt and every model's weights. Sampling starts from seeded noise and removes
/// a share of it at each of the configured steps, so the last step is the clean latent; <c>to_rgb</c> maps a latent to
/// colours. Built on the meta device, it has its shapes and nothing else: no memory, no random initial weights (the
/// weights loader builds it so, then fills it).
/// </summary>
internal sealed class TextToImageNet : nn.Module<Tensor, Tensor, Tensor>
{
    // Gains of the sine activations: how many folds (stripes, rings, blobs) the field gets across the image.
    private const double InputGain = 3.5;
    private const double BlockGain = 2.0;

    // How sharply colours saturate around their mean: higher gives flatter regions with clearer edges.
    private const double ColourGain = 2.5;

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

    /// <summary>The side of the latent the net works at: finer than the stored latent size, coarser than the image.</summary>
    public int Resolution => Math.Min(_config.ImageSize, _config.LatentSize * 4);

    /// <summary>Tokens <c>[n]</c> and noise <c>[1, C, L, L]</c> to the final image <c>[3, S, S]</c> in [0, 1].</summary>
    public override Tensor forward(Tensor tokens, Tensor noise)
    {
        var clean = Predict(tokens);
        return ToImage(Blend(clean, noise, _config.Steps), clean);
    }

    /// <summary>The clean latent <c>[1, C, R, R]</c> the prompt's tokens <c>[n]</c> call for.</summary>
    public Tensor Predict(Tensor tokens)
    {
        var prompt = embed.forward(tokens).mean([0], keepdim: true);
        var cond = condition.forward(prompt);
        var bias = cond.view(1, _config.HiddenChannels, 1, 1);
        var hidden = (Conv(conv_in, Field(cond)) + bias).mul(InputGain).sin();
        foreach (var block in blocks)
        {
            hidden = hidden + Conv(block, hidden).mul(BlockGain).sin();
        }

        return Conv(conv_out, hidden);
    }

    /// <summary>
    /// The latent after <paramref name="step"/> of the configured steps: noise (upsampled to the net's size, scaled to the
    /// clean latent's spread) blended toward <paramref name="clean"/>; the noise left falls with the square of the steps to go.
    /// </summary>
    public Tensor Blend(Tensor clean, Tensor noise, int step)
    {
        var left = Math.Pow(1.0 - Math.Clamp(step, 0, _config.Steps) / (double)_config.Steps, 2);
        var coarse = nn.functional.interpolate(noise, size: [Resolution, Resolution], mode: InterpolationMode.Bilinear, align_corners: false);
        var scaled = coarse * clean.std([2, 3], keepdim: true) + clean.mean([2, 3], keepdim: true);
        return clean + (scaled - clean).mul(left);
    }

    /// <summary>
    /// A latent <c>[1, C, R, R]</c> as an image <c>[3, S, S]</c> in [0, 1]; colours are scaled by the clean latent's
    /// statistics, so every step of one render shares one palette.
    /// </summary>
    public Tensor ToImage(Tensor latent, Tensor clean)
    {
        var size = new long[] { _config.ImageSize, _config.ImageSize };
        var reference = Conv(to_rgb, clean);
        var mean = reference.mean([2, 3], keepdim: true);
        var spread = reference.std([2, 3], keepdim: true) + 1e-6;
        var rgb = ((Conv(to_rgb, latent) - mean) / spread).mul(ColourGain).sigmoid();
        return nn.functional.interpolate(rgb, size: size, mode: InterpolationMode.Bilinear, align_corners: false).squeeze(0);
    }

    /// <summary>
    /// The coordinate field <c>[1, C, R, R]</c>: x and y (centred, turned and scaled by the prompt), the radius, their
    /// product and further sines of them, cycling through as many channels as the latent has.
    /// </summary>
    private Tensor Field(Tensor cond)
    {
        var device = cond.device;
        var shape = cond[0, TensorIndex.Slice(0, 4)].tanh().cpu().data<float>().ToArray();
        var (dx, dy, turn, zoom) = (0.5 * At(shape, 0), 0.5 * At(shape, 1), Math.PI * At(shape, 2), 1.0 + 0.5 * At(shape, 3));
        var axis = linspace(-1, 1, Resolution, device: device);
        var y0 = axis.view(Resolution, 1).expand(Resolution, Resolution) - dy;
        var x0 = axis.view(1, Resolution).expand(Resolution, Resolution) - dx;
        var x = (x0.mul(Math.Cos(turn)) - y0.mul(Math.Sin(turn))).mul(zoom);
        var y = (x0.mul(Math.Sin(turn)) + y0.mul(Math.Cos(turn))).mul(zoom);
        var radius = (x.square() + y.square()).sqrt();
        Tensor[] features = [x, y, radius, x * y, x.mul(Math.PI).sin(), y.mul(Math.PI).sin(), radius.mul(Math.PI).cos(), (x + y).mul(Math.PI / 2).sin()];
        return stack([.. Enumerable.Range(0, _config.LatentChannels).Select(i => features[i % features.Length])]).unsqueeze(0);
    }

    private static double At(float[] values, int index) => index < values.Length ? values[index] : 0;

    /// <summary>A 3x3 convolution with replicated borders, so the field has no dark frame.</summary>
    private static Tensor Conv(Conv2d conv, Tensor input) =>
        nn.functional.conv2d(nn.functional.pad(input, [1, 1, 1, 1], PaddingModes.Replicate), conv.weight!, conv.bias);
}
