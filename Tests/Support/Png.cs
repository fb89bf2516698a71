using SkiaSharp;

namespace FalHints.Tests.Support;

/// <summary>Checks that bytes are a PNG that decodes, and returns its size.</summary>
public static class Png
{
    public static (int Width, int Height) AssertValid(byte[] bytes)
    {
        Assert.True(bytes.Length > 8, "The image is empty.");
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A }, bytes[..8]);
        using var codec = SKCodec.Create(new MemoryStream(bytes));
        Assert.NotNull(codec);
        Assert.Equal(SKEncodedImageFormat.Png, codec.EncodedFormat);
        using var bitmap = SKBitmap.Decode(bytes);
        Assert.NotNull(bitmap);
        return (bitmap.Width, bitmap.Height);
    }
}
