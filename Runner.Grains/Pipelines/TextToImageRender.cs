using static TorchSharp.torch;

namespace FalHints.Runner.Pipelines;

/// <summary>
/// One render in progress, a step at a time, for apps that stream partial images: <see cref="Step"/> returns the image
/// after each step, the last one equal to <see cref="TextToImagePipeline.Render"/>'s. Use it, and dispose it, on the
/// pipeline's device thread.
/// </summary>
public sealed class TextToImageRender : IDisposable
{
    private readonly TextToImageNet _net;
    private readonly TextToImageConfig _config;
    private readonly Tensor _clean;
    private readonly Tensor _noise;

    internal TextToImageRender(TextToImageNet net, TextToImageConfig config, Tensor clean, Tensor noise)
    {
        (_net, _config, _clean, _noise) = (net, config, clean, noise);
    }

    /// <summary>The steps of the render.</summary>
    public int Steps => _config.Steps;

    /// <summary>Steps done so far.</summary>
    public int Done { get; private set; }

    /// <summary>Runs the next step and returns the image after it.</summary>
    /// <exception cref="InvalidOperationException">Every step is done.</exception>
    public RgbImage Step()
    {
        if (Done >= Steps)
        {
            throw new InvalidOperationException($"The render has done all its {Steps} steps.");
        }

        Done++;
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        return TextToImagePipeline.ToRgb(_net.ToImage(_net.Blend(_clean, _noise, Done), _clean), _config.ImageSize);
    }

    /// <summary>Releases the render's tensors.</summary>
    public void Dispose()
    {
        _clean.Dispose();
        _noise.Dispose();
    }
}
