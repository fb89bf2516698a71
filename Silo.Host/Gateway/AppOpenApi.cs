using System.Text.Json;
using FalHints.Client.Contracts;
using FalHints.Client.Requests;
using FalHints.Runner.Apps;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.OpenApi;

namespace FalHints.Host.Gateway;

/// <summary>
/// One OpenAPI document per app this node hosts, made by ASP.NET Core's OpenAPI support from the app's endpoints and
/// their input and output types, at <c>GET /{owner}/{app}/openapi.json</c> (fal serves one per endpoint the same way):
/// the queue calls of each endpoint, the result, status and cancel calls, and the direct (<c>/run</c>) calls. The
/// documented routes are the app's own routes, served by the same handlers as any app's.
/// </summary>
public static class AppOpenApi
{
    private const string RequestPath = "/requests/{request_id}";

    /// <summary>Registers a document for each app registered on the silo (call after the silo is configured).</summary>
    public static WebApplicationBuilder AddAppOpenApi(this WebApplicationBuilder builder)
    {
        builder.Services.ConfigureHttpJsonOptions(o =>
        {
            o.SerializerOptions.PropertyNamingPolicy = FalJson.Options.PropertyNamingPolicy;
            o.SerializerOptions.DefaultIgnoreCondition = FalJson.Options.DefaultIgnoreCondition;
        });
        var apps = builder.Services.Where(d => d.ServiceType == typeof(FalAppRegistration))
            .Select(d => d.ImplementationInstance).OfType<FalAppRegistration>().DistinctBy(r => r.AppType).ToList();
        foreach (var registration in apps)
        {
            var name = DocumentName(registration.AppType);
            builder.Services.AddOpenApi(name, o =>
            {
                o.ShouldInclude = d => string.Equals(d.GroupName, name, StringComparison.OrdinalIgnoreCase);
                o.AddDocumentTransformer((document, context, _) =>
                {
                    var appId = registration.AppId(context.ApplicationServices);
                    document.Info = new OpenApiInfo
                    {
                        Title = appId,
                        Version = "1",
                        Description = $"App {appId} through fal's queue API and as direct calls (/run/{appId}), as fal's clients call them.",
                    };
                    return Task.CompletedTask;
                });
            });
        }

        return builder;
    }

    /// <summary>Maps each local app's documented routes and <c>GET /{owner}/{app}/openapi.json</c>.</summary>
    public static WebApplication MapAppOpenApi(this WebApplication app)
    {
        var services = app.Services;
        var options = new RequestDelegateFactoryOptions { ServiceProvider = services, RouteParameterNames = ["owner", "app", "path", "requestId"] };
        var submit = RequestDelegateFactory.Create(FalQueueApi.SubmitAsync, options).RequestDelegate;
        var status = RequestDelegateFactory.Create(FalQueueApi.StatusAsync, options).RequestDelegate;
        var result = RequestDelegateFactory.Create(FalQueueApi.ResultAsync, options).RequestDelegate;
        var cancel = RequestDelegateFactory.Create(FalQueueApi.CancelAsync, options).RequestDelegate;
        var run = RequestDelegateFactory.Create(FalRunApi.RunAsync, options).RequestDelegate;
        var documents = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var registration in services.GetServices<FalAppRegistration>().DistinctBy(r => r.AppType))
        {
            var instance = registration.Create(services);
            var (owner, name) = Split(instance.AppId);
            var document = DocumentName(registration.AppType);
            documents[instance.AppId] = document;
            var endpoints = instance.DescribeEndpoints();
            var main = endpoints.FirstOrDefault(e => e.Path == "/") ?? endpoints[0];
            var group = app.MapGroup("/" + instance.AppId).WithGroupName(document).WithTags(instance.AppId);
            var direct = app.MapGroup("/run/" + instance.AppId).WithGroupName(document).WithTags(instance.AppId);
            foreach (var endpoint in endpoints)
            {
                var path = endpoint.Path == "/" ? string.Empty : endpoint.Path;
                // Delegates, not RequestDelegates: ASP.NET Core's API explorer describes only handlers it can see.
                group.MapPost(path, (Func<HttpContext, Task>)(http => Forward(http, submit, owner, name, path)))
                    .Accepts(endpoint.InputType, "application/json")
                    .Produces<QueueStatusDocument>()
                    .Produces<ErrorDocument>(StatusCodes.Status400BadRequest)
                    .WithSummary($"Queue a request to {endpoint.Path}")
                    .WithDescription("Headers: X-Fal-Runner-Hint, X-Fal-Queue-Priority (normal, low), X-Fal-Request-Timeout (seconds to start), x-fal-no-retry; query: fal_webhook.");
                var call = direct.MapPost(path, (Func<HttpContext, Task>)(http => Forward(http, run, owner, name, path)))
                    .Accepts(endpoint.InputType, "application/json")
                    .Produces(StatusCodes.Status200OK, endpoint.OutputType)
                    .Produces<ErrorDocument>(StatusCodes.Status400BadRequest)
                    .WithSummary(endpoint.Streaming
                        ? $"Call {endpoint.Path} and wait; with Accept: text/event-stream, every partial output as a server-sent event"
                        : $"Call {endpoint.Path} and wait for its output");
                if (endpoint.Streaming)
                {
                    call.Produces(StatusCodes.Status200OK, endpoint.OutputType, "text/event-stream");
                }
            }

            group.MapGet(RequestPath + "/status", (HttpContext http, string request_id) => Forward(http, status, owner, name, null, request_id))
                .Produces<QueueStatusDocument>().Produces<ErrorDocument>(StatusCodes.Status404NotFound).WithSummary("A request's status (?logs=1 adds its log)");
            group.MapGet(RequestPath, (HttpContext http, string request_id) => Forward(http, result, owner, name, null, request_id))
                .Produces(StatusCodes.Status200OK, main.OutputType).Produces<ErrorDocument>(StatusCodes.Status404NotFound).WithSummary("A completed request's output");
            group.MapPut(RequestPath + "/cancel", (HttpContext http, string request_id) => Forward(http, cancel, owner, name, null, request_id))
                .Produces<CancelDocument>(StatusCodes.Status202Accepted).Produces<CancelDocument>(StatusCodes.Status400BadRequest).WithSummary("Cancel a request");
        }

        app.MapGet("/{owner}/{app}/openapi.json", async (HttpContext http, string owner, string app) =>
        {
            var appId = $"{owner}/{app}";
            if (!documents.TryGetValue(appId, out var document))
            {
                return FalQueueApi.Error(StatusCodes.Status404NotFound, ErrorCodes.AppNotFound, $"This node hosts no app '{appId}', so it has no OpenAPI document for it.");
            }

            var openApi = await http.RequestServices.GetRequiredKeyedService<IOpenApiDocumentProvider>(document).GetOpenApiDocumentAsync(http.RequestAborted);
            using var text = new StringWriter(System.Globalization.CultureInfo.InvariantCulture);
            openApi.SerializeAsV3(new OpenApiJsonWriter(text));
            return Results.Text(text.ToString(), "application/json");
        }).ExcludeFromDescription();
        return app;
    }

    private static async Task Forward(HttpContext http, RequestDelegate handler, string owner, string app, string? path, string? requestId = null)
    {
        var values = http.Request.RouteValues;
        (values["owner"], values["app"], values["path"], values["requestId"]) = (owner, app, path?.TrimStart('/'), requestId);
        await handler(http);
    }

    private static (string Owner, string Name) Split(string appId) => (appId[..appId.IndexOf('/', StringComparison.Ordinal)], appId[(appId.IndexOf('/', StringComparison.Ordinal) + 1)..]);

    private static string DocumentName(Type appType) => appType.FullName!.Replace('+', '.').ToLowerInvariant();

    /// <summary>fal's queue answer (for the documents' schemas).</summary>
    internal sealed record QueueStatusDocument(string RequestId, string Status, int? QueuePosition, string StatusUrl, string ResponseUrl, string CancelUrl,
        string? RunnerId, bool? HintHit, int Attempts, JsonElement? Logs);

    /// <summary>fal's error shape (for the documents' schemas).</summary>
    internal sealed record ErrorDocument(string Detail, string ErrorType, string ErrorCode);

    /// <summary>The answer to a cancel (for the documents' schemas).</summary>
    internal sealed record CancelDocument(string Status);
}
