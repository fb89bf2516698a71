using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using FalHints.Client.Apps;
using FalHints.Client.Contracts;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Options;

namespace FalHints.Host.Gateway;

/// <summary>
/// fal's storage, as <c>fal.storage.upload</c> (and an input holding a <c>Blob</c>, which fal's clients upload first) use
/// it: <c>POST /storage/upload/initiate</c> (API key required) returns a one-time <c>upload_url</c> and the file's
/// <c>file_url</c>; <c>PUT</c> of the bytes to the upload URL (the URL is the credential, as fal's signed URLs are) stores
/// them, and <c>GET /files/{name}</c> serves them. A request whose input names a stored file of this gateway gets it
/// inside its input as a <c>data:</c> URL, so the app reads it wherever it runs.
/// </summary>
public static partial class FalStorageApi
{
    /// <summary>Where uploads are initiated.</summary>
    public const string InitiatePath = "/storage/upload/initiate";

    /// <summary>The prefix of upload URLs, which take no API key.</summary>
    public const string UploadPrefix = "/storage/upload";

    private const int MaxInitiateBytes = 16 << 10;

    /// <summary>Maps the initiation and the upload.</summary>
    public static IEndpointRouteBuilder MapFalStorageApi(this IEndpointRouteBuilder routes)
    {
        routes.MapPost(InitiatePath, InitiateAsync);
        routes.MapPut(UploadPrefix + "/{token}", UploadAsync);
        return routes;
    }

    /// <summary>True for a <c>PUT</c> to an upload URL: its token, not an API key, authorises it.</summary>
    internal static bool IsUpload(HttpRequest request) =>
        HttpMethods.IsPut(request.Method) && request.Path.StartsWithSegments(UploadPrefix, out var rest) && rest.HasValue && rest.Value!.LastIndexOf('/') == 0;

    private static async Task<IResult> InitiateAsync(HttpContext http, UploadTokens tokens, IOptions<GatewayOptions> options)
    {
        var (body, error) = await FalQueueApi.ReadInputAsync(http.Request, MaxInitiateBytes, options.Value.MaxDrainBytes);
        if (error is not null)
        {
            return error;
        }

        using var document = JsonDocument.Parse(body!);
        var contentType = document.RootElement.TryGetProperty("content_type", out var type) && type.ValueKind == JsonValueKind.String ? type.GetString()! : "application/octet-stream";
        if (!ContentTypePattern().IsMatch(contentType))
        {
            return FalQueueApi.Error(StatusCodes.Status400BadRequest, ErrorCodes.InvalidInput, $"content_type '{contentType}' is not a media type such as image/png.");
        }

        var fileName = document.RootElement.TryGetProperty("file_name", out var name) && name.ValueKind == JsonValueKind.String ? name.GetString()! : string.Empty;
        var extension = ExtensionPattern().Match(Path.GetExtension(fileName)) is { Success: true } match ? match.Value.ToLowerInvariant() : ".bin";
        var fileId = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16)) + extension;
        if (tokens.Issue(fileId, contentType) is not { } token)
        {
            return FalQueueApi.Error(StatusCodes.Status429TooManyRequests, ErrorCodes.QueueFull,
                $"Too many uploads were initiated and not made yet (at most {StorageOptions.SectionName}:MaxPendingUploads); upload those first or retry shortly.");
        }

        var baseUrl = FalQueueApi.BaseUrl(http);
        return Results.Json(new { upload_url = $"{baseUrl}{UploadPrefix}/{token}", file_url = $"{baseUrl}/files/{fileId}" }, GatewayJson.Options);
    }

    private static async Task<IResult> UploadAsync(HttpContext http, string token, UploadTokens tokens, FileCache files, IOptions<StorageOptions> options)
    {
        var max = options.Value.MaxFileBytes;
        if (http.Request.ContentLength > max)
        {
            return TooLarge(max);
        }

        if (tokens.Redeem(token) is not { } upload)
        {
            return FalQueueApi.Error(StatusCodes.Status404NotFound, "upload_not_found", "This upload URL is unknown, used already or expired; initiate the upload again.");
        }

        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
        {
            limit.MaxRequestBodySize = max + 1;
        }

        using var buffer = new MemoryStream();
        var chunk = new byte[81920];
        int read;
        while ((read = await http.Request.Body.ReadAsync(chunk, http.RequestAborted)) > 0)
        {
            if (buffer.Length + read > max)
            {
                return TooLarge(max);
            }

            buffer.Write(chunk, 0, read);
        }

        files.Put(upload.FileId, buffer.ToArray(), upload.ContentType);
        return Results.Json(new { }, GatewayJson.Options);
    }

    /// <summary>
    /// Replaces every string of the input that is the URL of a file this gateway keeps (an upload or an earlier output) by
    /// a <c>data:</c> URL holding the file; a file that has expired, or too many bytes in all, is an error naming it.
    /// </summary>
    internal static (string? Input, IResult? Error) InlineFiles(string inputJson, HttpRequest request, FileCache files, StorageOptions options)
    {
        if (!inputJson.Contains("/files/", StringComparison.Ordinal))
        {
            return (inputJson, null);
        }

        var root = JsonNode.Parse(inputJson)!;
        var total = 0L;
        string? missing = null;
        Visit(root);
        if (missing is not null)
        {
            return (null, FalQueueApi.Error(StatusCodes.Status422UnprocessableEntity, ErrorCodes.InvalidInput,
                $"The input names {missing}, which this gateway no longer keeps (or never did); upload the file again."));
        }

        return total > options.MaxInputFileBytes
            ? (null, FalQueueApi.Error(StatusCodes.Status413PayloadTooLarge, ErrorCodes.InvalidInput,
                $"The input names {total} bytes of files; at most {options.MaxInputFileBytes} ({StorageOptions.SectionName}:MaxInputFileBytes) are passed to an app."))
            : (root.ToJsonString(GatewayJson.Options), null);

        void Visit(JsonNode? node)
        {
            switch (node)
            {
                case JsonObject obj:
                    foreach (var (key, child) in obj.ToList())
                    {
                        if (Inline(child) is { } inlined)
                        {
                            obj[key] = inlined;
                        }
                        else
                        {
                            Visit(child);
                        }
                    }

                    break;
                case JsonArray array:
                    for (var i = 0; i < array.Count; i++)
                    {
                        if (Inline(array[i]) is { } inlined)
                        {
                            array[i] = inlined;
                        }
                        else
                        {
                            Visit(array[i]);
                        }
                    }

                    break;
            }
        }

        JsonNode? Inline(JsonNode? node)
        {
            if (node is not JsonValue value || !value.TryGetValue<string>(out var text)
                || !Uri.TryCreate(text, UriKind.Absolute, out var url) || (url.Scheme != Uri.UriSchemeHttp && url.Scheme != Uri.UriSchemeHttps)
                || !string.Equals(url.Authority, request.Host.Value, StringComparison.OrdinalIgnoreCase)
                || !url.AbsolutePath.StartsWith("/files/", StringComparison.Ordinal))
            {
                return null;
            }

            if (files.Find(url.AbsolutePath["/files/".Length..]) is not { } file)
            {
                missing ??= text;
                return null;
            }

            total += file.Bytes.Length;
            return JsonValue.Create(DataUrl.Encode(file.ContentType, file.Bytes));
        }
    }

    private static IResult TooLarge(long max) =>
        FalQueueApi.Error(StatusCodes.Status413PayloadTooLarge, ErrorCodes.InvalidInput, $"The file is larger than the {max} bytes accepted ({StorageOptions.SectionName}:MaxFileBytes).");

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}(;[ -~]{0,200})?$", RegexOptions.CultureInvariant)]
    private static partial Regex ContentTypePattern();

    [GeneratedRegex("^\\.[A-Za-z0-9]{1,10}$", RegexOptions.CultureInvariant)]
    private static partial Regex ExtensionPattern();
}

/// <summary>Upload URLs handed out and not used yet: each is good for one upload until it expires.</summary>
public sealed class UploadTokens(IOptions<StorageOptions> options, TimeProvider time)
{
    private readonly ConcurrentDictionary<string, PendingUpload> _pending = new(StringComparer.Ordinal);

    /// <summary>An upload URL's file and content type.</summary>
    public sealed record PendingUpload(string FileId, string ContentType, DateTimeOffset ExpiresAt);

    /// <summary>A new token for an upload of <paramref name="fileId"/>, or null when too many are pending.</summary>
    public string? Issue(string fileId, string contentType)
    {
        var now = time.GetUtcNow();
        foreach (var expired in _pending.Where(p => p.Value.ExpiresAt <= now))
        {
            _pending.TryRemove(expired.Key, out _);
        }

        if (_pending.Count >= options.Value.MaxPendingUploads)
        {
            return null;
        }

        var token = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
        _pending[token] = new PendingUpload(fileId, contentType, now + options.Value.UploadUrlLifetime);
        return token;
    }

    /// <summary>Takes the token's upload (once), or null when it is unknown or expired.</summary>
    public PendingUpload? Redeem(string token) =>
        _pending.TryRemove(token, out var upload) && upload.ExpiresAt > time.GetUtcNow() ? upload : null;
}
