using SkiaSharp;

namespace FalHints.Runner.Pipelines;

/// <summary>An 8-bit RGB image, rows top to bottom.</summary>
public sealed record RgbImage(int Width, int Height, byte[] Pixels)
{
    /// <summary>Encodes the image as PNG.</summary>
    public byte[] EncodePng()
    {
        var info = new SKImageInfo(Width, Height, SKColorType.Rgba8888, SKAlphaType.Opaque);
        var rgba = new byte[Width * Height * 4];
        for (int source = 0, target = 0; source < Pixels.Length; source += 3, target += 4)
        {
            rgba[target] = Pixels[source];
            rgba[target + 1] = Pixels[source + 1];
            rgba[target + 2] = Pixels[source + 2];
            rgba[target + 3] = 255;
        }

        using var image = SKImage.FromPixelCopy(info, rgba);
        using var png = image.Encode(SKEncodedImageFormat.Png, 100);
        return png.ToArray();
    }
}
