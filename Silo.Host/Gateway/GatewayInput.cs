using System.Buffers;
using System.Globalization;
using System.Text;
using FalHints.Client.Contracts;
using Microsoft.AspNetCore.Http;

namespace FalHints.Host.Gateway;

/// <summary>Checks of what callers send that the gateway makes before the cluster is asked anything.</summary>
internal static class GatewayInput
{
    // Enough of a bad id to recognise it, not a 9,000-character echo.
    private const int MaxEchoedIdLength = 64;

    /// <summary>A 404 naming the problem when <paramref name="requestId"/> cannot be a request id; null when it can.</summary>
    public static IResult? MalformedRequestId(string requestId, string appId)
    {
        if (RequestIds.IsWellFormed(requestId))
        {
            return null;
        }

        var shown = requestId.Length > MaxEchoedIdLength ? requestId[..MaxEchoedIdLength] + "..." : requestId;
        return FalQueueApi.Error(StatusCodes.Status404NotFound, ErrorCodes.RequestNotFound,
            $"No request '{shown}' of app '{appId}' can exist: request ids are {RequestIds.Length} lowercase hexadecimal digits.");
    }

    /// <summary>What is wrong with <paramref name="body"/> as UTF-8 (the first bad byte and where), or null when it is valid.</summary>
    public static string? Utf8Problem(ReadOnlySpan<byte> body)
    {
        if (System.Text.Unicode.Utf8.IsValid(body))
        {
            return null;
        }

        var offset = 0;
        while (offset < body.Length)
        {
            var status = Rune.DecodeFromUtf8(body[offset..], out _, out var consumed);
            if (status != OperationStatus.Done)
            {
                return string.Create(CultureInfo.InvariantCulture, $"The body is not valid UTF-8: byte 0x{body[offset]:X2} at offset {offset} does not start a valid character; JSON bodies must be UTF-8.");
            }

            offset += consumed;
        }

        return "The body is not valid UTF-8; JSON bodies must be UTF-8.";
    }

    /// <summary>
    /// Reads and drops what is left of the body, up to <paramref name="limit"/> bytes in all, so a client that sends
    /// its whole body before it reads (as Python's urllib does) receives the answer instead of a reset connection.
    /// </summary>
    public static async Task DrainAsync(HttpRequest request, long limit)
    {
        var chunk = new byte[81920];
        long drained = 0;
        try
        {
            int read;
            while (drained < limit && (read = await request.Body.ReadAsync(chunk, request.HttpContext.RequestAborted)) > 0)
            {
                drained += read;
            }
        }
        catch (Exception ex) when (ex is IOException or BadHttpRequestException or OperationCanceledException)
        {
            // The client went away, or sent more than Kestrel takes: the answer goes out as far as it can.
        }
    }
}
