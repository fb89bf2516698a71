namespace FalHints.Client.Apps;

/// <summary>
/// <c>data:</c> URLs, the form files take inside inputs and outputs: an app's output images are data URLs, and the HTTP
/// gateway hands an app every file of its storage that an input names (a <c>fal.storage.upload</c> URL) as one.
/// </summary>
public static class DataUrl
{
    private const string Marker = ";base64,";

    /// <summary>Whether <paramref name="url"/> is a base64 <c>data:</c> URL.</summary>
    public static bool IsDataUrl(string? url) =>
        url is not null && url.StartsWith("data:", StringComparison.Ordinal) && url.Contains(Marker, StringComparison.Ordinal);

    /// <summary>The media type and the bytes of a base64 <c>data:</c> URL.</summary>
    /// <exception cref="FormatException">The URL is not a base64 data URL.</exception>
    public static (string ContentType, byte[] Bytes) Decode(string url)
    {
        ArgumentNullException.ThrowIfNull(url);
        if (!IsDataUrl(url))
        {
            throw new FormatException("The URL is not a base64 data: URL.");
        }

        var at = url.IndexOf(Marker, StringComparison.Ordinal);
        var contentType = url[5..at];
        return (contentType.Length == 0 ? "text/plain" : contentType, Convert.FromBase64String(url[(at + Marker.Length)..]));
    }

    /// <summary>A base64 <c>data:</c> URL holding <paramref name="bytes"/>.</summary>
    public static string Encode(string contentType, ReadOnlySpan<byte> bytes) => $"data:{contentType}{Marker}{Convert.ToBase64String(bytes)}";
}
