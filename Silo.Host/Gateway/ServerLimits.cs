using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace FalHints.Host.Gateway;

/// <summary>
/// The request-line and header limits, answered in JSON. Kestrel answers requests past its own limits itself, with an
/// empty body and no hook to change it, so its limits are set well above the gateway's and the gateway enforces its
/// own in a middleware, where it can say what was too large in fal's error shape.
/// </summary>
internal static class ServerLimits
{
    // What Kestrel itself takes; requests beyond it get Kestrel's own empty 414 or 431.
    private const int KestrelLineAndHeaderBytes = 256 << 10;

    public static void Configure(KestrelServerOptions kestrel, GatewayOptions settings)
    {
        kestrel.Limits.MaxRequestBodySize = settings.MaxBodyBytes + settings.MaxDrainBytes;
        kestrel.Limits.MaxRequestLineSize = Math.Max(settings.MaxRequestLineBytes, KestrelLineAndHeaderBytes);
        kestrel.Limits.MaxRequestHeadersTotalSize = Math.Max(settings.MaxHeaderBytes, KestrelLineAndHeaderBytes);
    }

    public static async Task EnforceAsync(HttpContext http, RequestDelegate next)
    {
        var options = http.RequestServices.GetRequiredService<IOptions<GatewayOptions>>().Value;
        var request = http.Request;
        var target = http.Features.Get<IHttpRequestFeature>()?.RawTarget ?? request.Path.Value ?? string.Empty;
        var line = request.Method.Length + 1 + target.Length + 1 + request.Protocol.Length;
        if (line > options.MaxRequestLineBytes)
        {
            await FalQueueApi.Error(StatusCodes.Status414UriTooLong, "uri_too_long",
                $"The request line is {line} bytes long; at most {options.MaxRequestLineBytes} are accepted (request ids are 32 characters).").ExecuteAsync(http);
            return;
        }

        var headers = request.Headers.Sum(h => h.Key.Length + 4 + h.Value.Sum(v => v?.Length ?? 0));
        if (headers > options.MaxHeaderBytes)
        {
            await FalQueueApi.Error(StatusCodes.Status431RequestHeaderFieldsTooLarge, "headers_too_large",
                $"The request headers are {headers} bytes; at most {options.MaxHeaderBytes} are accepted.").ExecuteAsync(http);
            return;
        }

        await next(http);
    }
}
