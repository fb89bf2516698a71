using System.Text;
using FalHints.Client.Contracts;
using FalHints.Client.Requests;
using FalHints.Host.Hosting;
using FalHints.Router.Requests;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace FalHints.Host.Gateway;

/// <summary>Wires the HTTP gateway into the host: options, services, API keys, JSON errors, routes.</summary>
public static partial class GatewayHosting
{
    /// <summary>Registers the gateway's services and binds Kestrel to <see cref="GatewayOptions.Url"/> (the silo provides the model store).</summary>
    public static WebApplicationBuilder AddFalHintsGateway(this WebApplicationBuilder builder)
    {
        // Each section: bound, checked at start by its one validator.
        builder.Services.AddOptions<GatewayOptions>().Bind(builder.Configuration.GetSection(GatewayOptions.SectionName)).ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<GatewayOptions>, GatewayOptionsValidator>();
        builder.Services.AddOptions<StorageOptions>().Bind(builder.Configuration.GetSection(StorageOptions.SectionName)).ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<StorageOptions>, StorageOptionsValidator>();
        builder.Services.AddOptions<WebhookOptions>().Bind(builder.Configuration.GetSection(WebhookOptions.SectionName)).ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<WebhookOptions>, WebhookOptionsValidator>();
        var settings = builder.Configuration.GetSection(GatewayOptions.SectionName).Get<GatewayOptions>() ?? new GatewayOptions();
        builder.WebHost.UseUrls(settings.Url);
        builder.WebHost.ConfigureKestrel(k => ServerLimits.Configure(k, settings));
        builder.Services.AddSingleton(sp => new FileCache(sp.GetRequiredService<IOptions<GatewayOptions>>().Value.FileCacheBytes));
        builder.Services.TryAddSingleton(TimeProvider.System);
        builder.Services.AddSingleton(sp => new FalHintsClient(sp.GetRequiredService<IGrainFactory>(), sp.GetRequiredService<TimeProvider>()));
        builder.Services.AddSingleton<ApiKeyStore>();
        builder.Services.AddSingleton<UploadTokens>();
        builder.Services.AddSingleton<WebhookSender>();
        builder.Services.AddSingleton<IWebhookDelivery>(sp => sp.GetRequiredService<WebhookSender>());
        builder.Services.AddHostedService(sp => sp.GetRequiredService<WebhookSender>());
        builder.AddAppOpenApi();
        return builder;
    }

    /// <summary>API keys, JSON error bodies for anything unexpected, and the routes.</summary>
    public static WebApplication UseFalHintsGateway(this WebApplication app)
    {
        app.UseExceptionHandler(new ExceptionHandlerOptions
        {
            ExceptionHandler = AnswerFailureAsync,

            // A caller's mistake, or a cluster busy changing, is not the gateway's failure: logged in one line below.
            SuppressDiagnosticsCallback = context => StatusFor(context.Exception).Status < StatusCodes.Status500InternalServerError
                || StatusFor(context.Exception).Status == StatusCodes.Status503ServiceUnavailable,
        });
        app.UseStatusCodePages(async context =>
        {
            var http = context.HttpContext;
            if (!http.Response.HasStarted && http.Response.ContentLength is null && string.IsNullOrEmpty(http.Response.ContentType))
            {
                await FalQueueApi.Error(http.Response.StatusCode, "http_error",
                    http.Response.StatusCode == StatusCodes.Status404NotFound ? $"No route for {http.Request.Method} {http.Request.Path}." : $"HTTP {http.Response.StatusCode}.").ExecuteAsync(http);
            }
        });
        app.Use(ServerLimits.EnforceAsync);
        app.UseFalProxy();
        app.Use(RequireApiKey);
        app.UseWebSockets(new WebSocketOptions { KeepAliveInterval = TimeSpan.FromSeconds(30) });
        app.UseRouting();
        app.MapGet("/health", (IServiceProvider services) => services.GetService<NodeHealth>()?.Report is { Healthy: false } report
            ? FalQueueApi.Error(StatusCodes.Status503ServiceUnavailable, "unhealthy", report.Problem!)
            : Results.Text("ok"));
        app.MapFalQueueApi();
        app.MapFalRunApi();
        app.MapFalRealtimeApi();
        app.MapRealtimeTokens();
        app.MapFalStorageApi();
        app.MapAppOpenApi();
        return app;
    }

    /// <summary>The answer to an exception no endpoint handled: a 4xx for bad input, a retryable 503, else a 500.</summary>
    private static async Task AnswerFailureAsync(HttpContext http)
    {
        var failure = http.Features.Get<IExceptionHandlerFeature>()?.Error;
        var (status, code, detail) = StatusFor(failure);
        if (status == StatusCodes.Status503ServiceUnavailable)
        {
            http.Response.Headers.RetryAfter = "1";
        }

        if (status < StatusCodes.Status500InternalServerError || status == StatusCodes.Status503ServiceUnavailable)
        {
            var logger = http.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(GatewayHosting).FullName!);
            LogRefused(logger, http.Request.Method, http.Request.Path, status, code, failure?.GetBaseException().Message ?? detail);
        }

        await FalQueueApi.Error(status, code, detail).ExecuteAsync(http);
    }

    private static (int Status, string Code, string Detail) StatusFor(Exception? failure) => failure switch
    {
        BadHttpRequestException bad => (bad.StatusCode, ErrorCodes.InvalidInput, bad.Message),
        ArgumentException argument => (StatusCodes.Status400BadRequest, ErrorCodes.InvalidInput, argument.Message),

        // A call into the cluster failed or was cancelled while a node joined or left: worth a retry.
        { } transient when ClusterFailures.IsTransient(transient) => (StatusCodes.Status503ServiceUnavailable, ErrorCodes.ClusterUnavailable,
            "The cluster could not answer in time (a node may be joining or leaving); retry shortly."),
        _ => (StatusCodes.Status500InternalServerError, "internal_error", "The gateway failed to handle the request; see the silo's log."),
    };

    [LoggerMessage(1, LogLevel.Warning, "{Method} {Path} answered {Status} {Code}: {Reason}")]
    private static partial void LogRefused(ILogger logger, string method, string path, int status, string code, string reason);

    /// <summary>The dashboard and the runners view (page and API): what an operator opens in a browser.</summary>
    internal static bool IsOperatorPage(PathString path) =>
        path.StartsWithSegments("/dashboard") || path.StartsWithSegments("/runners") || path.StartsWithSegments("/api/runners");

    /// <summary>
    /// The key in <c>Authorization: Key &lt;key&gt;</c> (fal's scheme), or, when <paramref name="allowBasic"/>, the password
    /// of <c>Authorization: Basic</c> (so a browser can open the dashboard and the runners view); null for anything else.
    /// </summary>
    internal static string? PresentedKey(string? header, bool allowBasic)
    {
        if (header is null)
        {
            return null;
        }

        if (header.StartsWith("Key ", StringComparison.Ordinal))
        {
            return header[4..].Trim();
        }

        if (!allowBasic || !header.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        try
        {
            var credentials = Encoding.UTF8.GetString(Convert.FromBase64String(header[6..].Trim()));
            var colon = credentials.IndexOf(':', StringComparison.Ordinal);
            return colon < 0 ? null : credentials[(colon + 1)..];
        }
        catch (FormatException)
        {
            return null;
        }
    }

    /// <summary>When keys are configured, every route but <c>/health</c> needs <c>Authorization: Key &lt;key&gt;</c> (the operator pages also take Basic with the key as password).</summary>
    private static async Task RequireApiKey(HttpContext http, RequestDelegate next)
    {
        // An upload URL carries its own one-time token, as fal's signed upload URLs do: fal's clients send no key there.
        // A realtime connection checks its own token (browsers cannot send a key on a WebSocket).
        if (http.Request.Path == "/health" || FalStorageApi.IsUpload(http.Request) || FalRealtimeApi.IsConnection(http.Request))
        {
            await next(http);
            return;
        }

        var keys = http.RequestServices.GetRequiredService<ApiKeyStore>();
        if (!keys.Required)
        {
            await next(http);
            return;
        }

        // Basic credentials (which browsers resend on their own) are taken for the read-only pages only, so a page on
        // another site cannot make a signed-in browser submit requests.
        var pages = IsOperatorPage(http.Request.Path);
        var presented = PresentedKey(http.Request.Headers.Authorization.FirstOrDefault(), allowBasic: pages);
        if (presented is not null && keys.IsValid(presented))
        {
            await next(http);
            return;
        }

        if (pages)
        {
            // Browsers prompt for Basic credentials on this header: any user name, the key as the password.
            http.Response.Headers.WWWAuthenticate = "Basic realm=\"FalHints\", charset=\"UTF-8\"";
        }

        var detail = presented is null ? "This gateway needs an API key: send 'Authorization: Key <key>'." : "The API key is not valid.";
        await FalQueueApi.Error(StatusCodes.Status401Unauthorized, "unauthorized", detail).ExecuteAsync(http);
    }
}
