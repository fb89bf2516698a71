using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using FalHints.Client.Contracts;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace FalHints.Host.Gateway;

/// <summary>
/// fal's short-lived tokens (<c>POST https://rest.fal.ai/tokens/</c>, which <see cref="FalProxy"/> maps to
/// <c>POST /tokens/</c>): a caller with an API key asks for a token that lets a browser open
/// <see cref="FalRealtimeApi"/> connections to the apps it names, for a number of seconds, without the key itself.
/// A token is signed with the key that asked for it (HMAC-SHA256) and names that key by a hash of it, so any node of the
/// cluster that accepts the key accepts the token, no token is stored anywhere, and revoking the key revokes its tokens.
/// </summary>
public static class RealtimeTokens
{
    /// <summary>Where tokens are issued.</summary>
    public const string Path = "/tokens";

    /// <summary>The longest lifetime a token may ask for, in seconds (one day).</summary>
    public const int MaxLifetimeSeconds = 86_400;

    private const string Version = "fhrt1";

    /// <summary>Maps <c>POST /tokens/</c>.</summary>
    public static IEndpointRouteBuilder MapRealtimeTokens(this IEndpointRouteBuilder routes)
    {
        routes.MapPost(Path, IssueAsync);
        return routes;
    }

    /// <summary>Reads <c>{"allowed_apps": ["app", ...], "token_expiration": seconds}</c> and answers the token as a JSON string.</summary>
    internal static async Task<IResult> IssueAsync(HttpContext http, ApiKeyStore keys, TimeProvider time, Microsoft.Extensions.Options.IOptions<GatewayOptions> options)
    {
        var (input, error) = await FalQueueApi.ReadInputAsync(http.Request, 64 * 1024, options.Value.MaxDrainBytes);
        if (error is not null)
        {
            return error;
        }

        using var document = JsonDocument.Parse(input!);
        var root = document.RootElement;
        if (!root.TryGetProperty("allowed_apps", out var appsElement) || appsElement.ValueKind != JsonValueKind.Array || appsElement.GetArrayLength() == 0
            || appsElement.EnumerateArray().Any(a => a.ValueKind != JsonValueKind.String || string.IsNullOrWhiteSpace(a.GetString())))
        {
            return FalQueueApi.Error(StatusCodes.Status422UnprocessableEntity, ErrorCodes.InvalidInput,
                "allowed_apps must be a non-empty array of app names (the app part of owner/app), as fal's client sends.");
        }

        var lifetime = 120;
        if (root.TryGetProperty("token_expiration", out var expiration)
            && (expiration.ValueKind != JsonValueKind.Number || !expiration.TryGetInt32(out lifetime) || lifetime < 1 || lifetime > MaxLifetimeSeconds))
        {
            return FalQueueApi.Error(StatusCodes.Status422UnprocessableEntity, ErrorCodes.InvalidInput,
                $"token_expiration must be a whole number of seconds from 1 to {MaxLifetimeSeconds}, not {expiration.GetRawText()}.");
        }

        var apps = appsElement.EnumerateArray().Select(a => a.GetString()!).ToArray();
        var key = keys.Required ? GatewayHosting.PresentedKey(http.Request.Headers.Authorization.FirstOrDefault(), allowBasic: false) : null;
        return Results.Json(Issue(key, apps, time.GetUtcNow().AddSeconds(lifetime)), GatewayJson.Options);
    }

    /// <summary>A token for <paramref name="apps"/> until <paramref name="expiresAt"/>, signed with <paramref name="key"/> (none when the gateway has no keys).</summary>
    public static string Issue(string? key, IReadOnlyList<string> apps, DateTimeOffset expiresAt)
    {
        var body = $"{Version}.{expiresAt.ToUnixTimeSeconds()}.{Base64Url(JsonSerializer.SerializeToUtf8Bytes(apps))}.{KeyId(key)}";
        return $"{body}.{Base64Url(Sign(key, body))}";
    }

    /// <summary>
    /// Null when <paramref name="token"/> admits a connection to the app named <paramref name="app"/> (the part after the
    /// owner) now, signed by a key <paramref name="keys"/> accepts; otherwise why not.
    /// </summary>
    public static string? Check(string? token, string app, ApiKeyStore keys, DateTimeOffset now)
    {
        if (string.IsNullOrEmpty(token))
        {
            return "This gateway needs a token: connect with ?fal_jwt_token=<token> from POST /tokens/ (fal.realtime's tokenProvider), or send 'Authorization: Key <key>'.";
        }

        var parts = token.Split('.');
        if (parts.Length != 5 || parts[0] != Version || !long.TryParse(parts[1], out var expires))
        {
            return "The token is not one this gateway issued.";
        }

        var key = keys.KeyWithId(parts[3], KeyId);
        var body = string.Join('.', parts[..4]);
        byte[] signature;
        try
        {
            signature = Convert.FromBase64String(FromBase64Url(parts[4]));
        }
        catch (FormatException)
        {
            return "The token is not one this gateway issued.";
        }

        if (key is null || !CryptographicOperations.FixedTimeEquals(signature, Sign(key, body)))
        {
            return "The token's signature is not valid (or the key that asked for it was revoked).";
        }

        if (DateTimeOffset.FromUnixTimeSeconds(expires) <= now)
        {
            return "The token has expired.";
        }

        string[]? apps;
        try
        {
            apps = JsonSerializer.Deserialize<string[]>(Convert.FromBase64String(FromBase64Url(parts[2])));
        }
        catch (Exception ex) when (ex is FormatException or JsonException)
        {
            return "The token is not one this gateway issued.";
        }

        return apps?.Contains(app, StringComparer.Ordinal) == true ? null : $"The token does not allow the app '{app}'.";
    }

    /// <summary>A short public name of a key: the start of its SHA-256, so a token says which key signed it without holding it.</summary>
    internal static string KeyId(string? key) =>
        key is null ? "open" : Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)))[..16];

    private static byte[] Sign(string? key, string body) =>
        HMACSHA256.HashData(Encoding.UTF8.GetBytes(key ?? string.Empty), Encoding.UTF8.GetBytes(body));

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private static string FromBase64Url(string text)
    {
        var base64 = text.Replace('-', '+').Replace('_', '/');
        return base64.PadRight(base64.Length + ((4 - (base64.Length % 4)) % 4), '=');
    }
}
