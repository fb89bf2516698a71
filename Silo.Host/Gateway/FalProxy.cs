using FalHints.Client.Contracts;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace FalHints.Host.Gateway;

/// <summary>
/// fal's proxy protocol, at fal's path: a fal client configured with <c>proxyUrl: { url: "http://host:port/api/fal/proxy",
/// when: "always" }</c> sends every call here with the URL it would have called in <c>x-fal-target-url</c>. The gateway
/// serves that call itself: <c>queue.fal.run</c> is the queue API, <c>fal.run</c> the synchronous and streaming calls
/// (<see cref="FalRunApi"/>), <c>rest.fal.ai/storage/upload/initiate</c> the storage (<see cref="FalStorageApi"/>), <c>rest.fal.ai/tokens/</c> the
/// realtime tokens (<see cref="RealtimeTokens"/>).
/// </summary>
public static class FalProxy
{
    /// <summary>fal's proxy path.</summary>
    public const string Path = "/api/fal/proxy";

    /// <summary>The header holding the URL the client would have called.</summary>
    public const string TargetHeader = "x-fal-target-url";

    /// <summary>
    /// Turns a proxied call into the gateway's own route before routing (so API keys, limits and routes apply as to a
    /// direct call); a target the gateway does not serve is answered with an error naming it.
    /// </summary>
    public static IApplicationBuilder UseFalProxy(this IApplicationBuilder app) => app.Use(async (http, next) =>
    {
        if (http.Request.Path != Path)
        {
            await next(http);
            return;
        }

        if (Map(http.Request.Headers[TargetHeader].FirstOrDefault(), out var path, out var query) is { } error)
        {
            await error.ExecuteAsync(http);
            return;
        }

        http.Request.Path = path;
        http.Request.QueryString = query;
        await next(http);
    });

    /// <summary>The gateway path and query for a fal URL, or the error that says why it is not served.</summary>
    internal static IResult? Map(string? target, out PathString path, out QueryString query)
    {
        (path, query) = (PathString.Empty, QueryString.Empty);
        if (string.IsNullOrEmpty(target))
        {
            return FalQueueApi.Error(StatusCodes.Status400BadRequest, ErrorCodes.InvalidInput,
                $"A call to {Path} needs the {TargetHeader} header (fal's proxy protocol: the fal URL the client would have called).");
        }

        if (!Uri.TryCreate(target, UriKind.Absolute, out var url) || url.Scheme != Uri.UriSchemeHttps)
        {
            return FalQueueApi.Error(StatusCodes.Status400BadRequest, ErrorCodes.InvalidInput, $"{TargetHeader} '{target}' is not an https URL of fal.");
        }

        query = QueryString.FromUriComponent(url.Query);
        var remote = PathString.FromUriComponent(url.AbsolutePath);
        switch (url.Host.ToLowerInvariant())
        {
            case "queue.fal.run":
                path = remote;
                return null;
            case "fal.run":
                path = FalRunApi.Prefix.Add(remote);
                return null;
            case "rest.fal.ai" when remote == FalStorageApi.InitiatePath:
                path = remote;
                return null;
            case "rest.fal.ai" when remote.StartsWithSegments(RealtimeTokens.Path):
                path = RealtimeTokens.Path;
                return null;
            case "rest.fal.ai" when remote.StartsWithSegments("/storage/upload/initiate-multipart"):
                return FalQueueApi.Error(StatusCodes.Status413PayloadTooLarge, ErrorCodes.InvalidInput,
                    "This gateway takes uploads of at most FalHints:Gateway:Storage:MaxFileBytes in one part; multipart uploads (files over 90 MB) are not served.");
            default:
                return FalQueueApi.Error(StatusCodes.Status404NotFound, ErrorCodes.EndpointNotFound,
                    $"This gateway does not serve {url.GetLeftPart(UriPartial.Path)}: it serves queue.fal.run, fal.run, rest.fal.ai/storage/upload/initiate and rest.fal.ai/tokens/.");
        }
    }
}
