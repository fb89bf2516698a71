using System.Globalization;

namespace FalHints.Host.Hosting;

/// <summary>Reads and writes sizes like <c>16MB</c> or <c>1.5GB</c> (binary multiples).</summary>
internal static class ByteSize
{
    private static readonly (string Suffix, long Factor)[] Units =
        [("GB", 1L << 30), ("G", 1L << 30), ("MB", 1L << 20), ("M", 1L << 20), ("KB", 1L << 10), ("K", 1L << 10), ("B", 1)];

    public static long Parse(string text)
    {
        var trimmed = text.Trim().ToUpperInvariant();
        foreach (var (suffix, factor) in Units)
        {
            if (trimmed.EndsWith(suffix, StringComparison.Ordinal)
                && double.TryParse(trimmed[..^suffix.Length], NumberStyles.Float, CultureInfo.InvariantCulture, out var value)
                && value > 0)
            {
                return (long)(value * factor);
            }
        }

        throw new FormatException($"'{text}' is not a size; use a number with KB, MB or GB, e.g. 16MB.");
    }

    public static string Format(long bytes) => bytes switch
    {
        >= 1L << 30 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 30):0.0} GB"),
        >= 1L << 20 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 20):0.0} MB"),
        >= 1L << 10 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 10):0.0} KB"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{bytes} B"),
    };
}
