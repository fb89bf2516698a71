using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using FalHints.Client.Contracts;
using FalHints.Client.Requests;
using FalHints.Runner.Models;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Options;

namespace FalHints.Host.Gateway;

/// <summary>
/// fal's queue API over HTTP, so fal's clients work against a FalHints cluster unchanged:
/// <c>POST /{owner}/{app}[/{path}]</c>, <c>GET .../requests/{id}/status</c> (<c>?logs=1</c>),
/// <c>GET .../requests/{id}/status/stream</c> (server-sent events), <c>GET .../requests/{id}</c>,
/// <c>PUT .../requests/{id}/cancel</c>; plus <c>GET /models</c> and <c>GET /files/{name}</c> for output images.
/// </summary>
public static class FalQueueApi
{
    /// <summary>The runner that served the request.</summary>
    public const string RunnerHeader = "X-FalHints-Runner";

    /// <summary>Whether that runner held the request's hint (<c>true</c>/<c>false</c>).</summary>
    public const string HintHitHeader = "X-FalHints-Hint-Hit";

    private const string RequestIdHeader = "x-fal-request-id";
    private static readonly TimeSpan MaxStartTimeout = TimeSpan.FromDays(1);
    private static readonly JsonSerializerOptions Json = GatewayJson.Options;

    /// <summary>Maps the API's routes.</summary>
    public static IEndpointRouteBuilder MapFalQueueApi(this IEndpointRouteBuilder routes)
    {
        routes.MapGet("/models", (ModelStore store) => Results.Json(store.List().Select(m => m.Id), Json));
        routes.MapGet("/files/{name}", (string name, FileCache files) => files.Find(name) is { } file
            ? Results.File(file.Bytes, file.ContentType)
            : Error(StatusCodes.Status404NotFound, "file_not_found", $"No file '{name}' is kept here; it may have expired."));
        routes.MapPost("/{owner}/{app}/{**path}", SubmitAsync);
        routes.MapGet("/{owner}/{app}/requests/{requestId}/status", StatusAsync);
        routes.MapGet("/{owner}/{app}/requests/{requestId}/status/stream", StreamStatusAsync);
        routes.MapGet("/{owner}/{app}/requests/{requestId}", ResultAsync);
        routes.MapPut("/{owner}/{app}/requests/{requestId}/cancel", CancelAsync);
        return routes;
    }

    /// <summary>An error in fal's shape (<c>detail</c>, <c>error_type</c>, its headers), with FalHints' code (<c>error_code</c>).</summary>
    public static IResult Error(int status, string code, string detail) => new FalErrorResult(status, code, detail);

    internal static async Task<IResult> SubmitAsync(HttpContext http, string owner, string app, string? path, FalHintsClient client,
        FileCache files, IOptions<GatewayOptions> options, IOptions<StorageOptions> storage, IOptions<WebhookOptions> webhookOptions)
    {
        var appId = $"{owner}/{app}";
        if (!AppIds.TryValidate(appId, out var appError))
        {
            return Error(StatusCodes.Status400BadRequest, ErrorCodes.InvalidInput, appError);
        }

        if (await client.Apps.RefusesAsync(appId, http.RequestAborted))
        {
            return AppNotFound(appId);
        }

        if (ReadOptions(http.Request, out var hint, out var submitOptions) is { } headerError)
        {
            return headerError;
        }

        Uri? webhook = null;
        if (http.Request.Query.TryGetValue("fal_webhook", out var webhookUrl) && !webhookOptions.Value.TryAllow(webhookUrl.ToString(), out webhook, out var webhookError))
        {
            return Error(StatusCodes.Status400BadRequest, ErrorCodes.InvalidInput, webhookError!);
        }

        var (input, bodyError) = await ReadInputAsync(http.Request, options.Value.MaxBodyBytes, options.Value.MaxDrainBytes);
        if (bodyError is null)
        {
            (input, bodyError) = FalStorageApi.InlineFiles(input!, http.Request, files, storage.Value);
        }

        if (bodyError is not null)
        {
            return bodyError;
        }

        if (webhook is not null)
        {
            // Stored with the request: whichever node holds it when it ends delivers the webhook.
            submitOptions = submitOptions with { Webhook = new WebhookTarget(webhook.ToString(), BaseUrl(http)) };
        }

        var (handle, unavailable) = await StorageWait.EnqueueAsync(http, options.Value.StorageUnavailableWait,
            cancellationToken => client.EnqueueAsync(appId, input!, hint, "/" + (path ?? string.Empty), submitOptions, cancellationToken));
        if (unavailable is not null)
        {
            return unavailable;
        }

        var status = handle!.Submitted!;
        if (status.Result?.Error is { Code: ErrorCodes.QueueFull or ErrorCodes.InvalidInput } refused)
        {
            // Headers and ids were checked above: an input refused now broke one of the app's declared limits.
            return Error(refused.Code == ErrorCodes.QueueFull ? StatusCodes.Status429TooManyRequests : StatusCodes.Status422UnprocessableEntity, refused.Code, refused.Message);
        }

        http.Response.Headers[RequestIdHeader] = handle.RequestId;

        // fal answers a submission IN_QUEUE, even when a free runner has already started it, or finished it (a fast app
        // on a runner that was free), by the time this answers: the outcome is read from the status and result URLs.
        var accepted = status.State == RequestState.Queued ? status : status with { State = RequestState.Queued, QueuePosition = 0, Result = null };
        return Results.Json(Describe(http, accepted, logs: false), Json);
    }

    internal static async Task<IResult> StatusAsync(HttpContext http, string owner, string app, string requestId, FalHintsClient client)
    {
        if (GatewayInput.MalformedRequestId(requestId, $"{owner}/{app}") is { } malformed)
        {
            return malformed;
        }

        var status = await client.GetRequest(requestId).GetStatusAsync(http.RequestAborted);
        if (NotFound(status, $"{owner}/{app}") is { } missing)
        {
            return missing;
        }

        AddServedBy(http, status);
        return Results.Json(Describe(http, status, logs: http.Request.Query["logs"] == "1"), Json);
    }

    private static async Task StreamStatusAsync(HttpContext http, string owner, string app, string requestId, FalHintsClient client)
    {
        if (GatewayInput.MalformedRequestId(requestId, $"{owner}/{app}") is { } malformed)
        {
            await malformed.ExecuteAsync(http);
            return;
        }

        var handle = client.GetRequest(requestId);
        var status = await handle.GetStatusAsync(http.RequestAborted);
        if (NotFound(status, $"{owner}/{app}") is { } missing)
        {
            await missing.ExecuteAsync(http);
            return;
        }

        http.Response.ContentType = "text/event-stream";
        http.Response.Headers.CacheControl = "no-cache";
        http.Response.Headers[RequestIdHeader] = requestId;
        var logs = http.Request.Query["logs"] == "1";
        string? last = null;
        while (!http.RequestAborted.IsCancellationRequested)
        {
            var json = JsonSerializer.Serialize(Describe(http, status, logs), Json);
            if (json != last)
            {
                await http.Response.WriteAsync($"data: {json}\n\n", http.RequestAborted);
                await http.Response.Body.FlushAsync(http.RequestAborted);
                last = json;
            }

            if (status.State == RequestState.Completed)
            {
                return;
            }

            // A long poll: returns at once when the request completes, else after a short wait for queue updates.
            status = await handle.WaitAsync(TimeSpan.FromMilliseconds(250), http.RequestAborted);
        }
    }

    internal static async Task<IResult> ResultAsync(HttpContext http, string owner, string app, string requestId, FalHintsClient client, FileCache files)
    {
        if (GatewayInput.MalformedRequestId(requestId, $"{owner}/{app}") is { } malformed)
        {
            return malformed;
        }

        var status = await client.GetRequest(requestId).GetStatusAsync(http.RequestAborted);
        if (NotFound(status, $"{owner}/{app}") is { } missing)
        {
            return missing;
        }

        if (status.State != RequestState.Completed)
        {
            return Error(StatusCodes.Status400BadRequest, "in_progress", $"Request {requestId} is still {(status.State == RequestState.Queued ? "in the queue" : "in progress")}.");
        }

        http.Response.Headers[RequestIdHeader] = requestId;
        AddServedBy(http, status);
        if (status.Result!.Error is { } error)
        {
            if (error.Code == ErrorCodes.StartTimeout)
            {
                http.Response.Headers["x-fal-request-timeout-type"] = "user";
            }

            return Error(StatusFor(error.Code), error.Code, error.Message);
        }

        return Results.Text(WithFileUrls(status.Result.OutputJson!, files, BaseUrl(http)), "application/json", Encoding.UTF8);
    }

    internal static async Task<IResult> CancelAsync(HttpContext http, string owner, string app, string requestId, FalHintsClient client)
    {
        if (GatewayInput.MalformedRequestId(requestId, $"{owner}/{app}") is { } malformed)
        {
            return malformed;
        }

        var handle = client.GetRequest(requestId);
        var status = await handle.GetStatusAsync(http.RequestAborted);
        if (NotFound(status, $"{owner}/{app}") is { } missing)
        {
            return missing;
        }

        if (status.State == RequestState.Completed)
        {
            return Results.Json(new { status = "ALREADY_COMPLETED" }, Json, statusCode: StatusCodes.Status400BadRequest);
        }

        await handle.CancelAsync(http.RequestAborted);
        return Results.Json(new { status = "CANCELLATION_REQUESTED" }, Json, statusCode: StatusCodes.Status202Accepted);
    }

    /// <summary>Reads fal's request headers; returns a 400 naming the bad header, or null.</summary>
    internal static IResult? ReadOptions(HttpRequest request, out string? hint, out SubmitOptions options)
    {
        options = SubmitOptions.Default;
        hint = request.Headers["X-Fal-Runner-Hint"].FirstOrDefault();
        if (!Hints.TryValidate(hint, out var hintError))
        {
            return Error(StatusCodes.Status400BadRequest, ErrorCodes.InvalidInput, $"X-Fal-Runner-Hint: {hintError}");
        }

        var priority = RequestPriority.Normal;
        if (request.Headers["X-Fal-Queue-Priority"].FirstOrDefault() is { } priorityText)
        {
            switch (priorityText.Trim().ToLowerInvariant())
            {
                case "normal":
                    break;
                case "low":
                    priority = RequestPriority.Low;
                    break;
                default:
                    return Error(StatusCodes.Status400BadRequest, ErrorCodes.InvalidInput, $"X-Fal-Queue-Priority is '{priorityText}'; use 'normal' or 'low'.");
            }
        }

        TimeSpan? startTimeout = null;
        if (request.Headers["X-Fal-Request-Timeout"].FirstOrDefault() is { } timeoutText)
        {
            if (!double.TryParse(timeoutText, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds)
                || !double.IsFinite(seconds) || seconds <= 0 || seconds > MaxStartTimeout.TotalSeconds)
            {
                return Error(StatusCodes.Status400BadRequest, ErrorCodes.InvalidInput,
                    $"X-Fal-Request-Timeout is '{timeoutText}'; use a number of seconds above 0 and at most {MaxStartTimeout.TotalSeconds:0}.");
            }

            startTimeout = TimeSpan.FromSeconds(seconds);
        }

        var noRetry = false;
        if (request.Headers["x-fal-no-retry"].FirstOrDefault() is { } noRetryText)
        {
            switch (noRetryText.Trim().ToLowerInvariant())
            {
                case "1" or "true" or "yes":
                    noRetry = true;
                    break;
                case "0" or "false" or "no":
                    break;
                default:
                    return Error(StatusCodes.Status400BadRequest, ErrorCodes.InvalidInput, $"x-fal-no-retry is '{noRetryText}'; use 1, true or yes (or 0, false, no).");
            }
        }

        options = new SubmitOptions(priority, startTimeout, noRetry);
        return null;
    }

    /// <summary>
    /// The body as a JSON object (an empty body is <c>{}</c>), or a 4xx naming what is wrong with it. A body over the
    /// limit is read and dropped up to <paramref name="drainBytes"/>, so the caller hears the 413.
    /// </summary>
    internal static async Task<(string? Input, IResult? Error)> ReadInputAsync(HttpRequest request, long maxBytes, long drainBytes)
    {
        if (request.ContentLength > maxBytes)
        {
            await GatewayInput.DrainAsync(request, drainBytes);
            return (null, Error(StatusCodes.Status413PayloadTooLarge, ErrorCodes.InvalidInput, $"The body is {request.ContentLength} bytes; at most {maxBytes} are accepted."));
        }

        using var buffer = new MemoryStream();
        var chunk = new byte[81920];
        int read;
        while ((read = await request.Body.ReadAsync(chunk, request.HttpContext.RequestAborted)) > 0)
        {
            if (buffer.Length + read > maxBytes)
            {
                await GatewayInput.DrainAsync(request, drainBytes);
                return (null, Error(StatusCodes.Status413PayloadTooLarge, ErrorCodes.InvalidInput, $"The body is larger than the {maxBytes} bytes accepted."));
            }

            buffer.Write(chunk, 0, read);
        }

        if (buffer.Length == 0)
        {
            return ("{}", null);
        }

        if (GatewayInput.Utf8Problem(buffer.GetBuffer().AsSpan(0, (int)buffer.Length)) is { } notUtf8)
        {
            return (null, Error(StatusCodes.Status400BadRequest, ErrorCodes.InvalidInput, notUtf8));
        }

        try
        {
            using var document = JsonDocument.Parse(buffer.ToArray());
            return document.RootElement.ValueKind == JsonValueKind.Object
                ? (document.RootElement.GetRawText(), null)
                : (null, Error(StatusCodes.Status422UnprocessableEntity, ErrorCodes.InvalidInput, $"The body must be a JSON object, not {document.RootElement.ValueKind}."));
        }
        catch (JsonException ex)
        {
            return (null, Error(StatusCodes.Status400BadRequest, ErrorCodes.InvalidInput, $"The body is not valid JSON: {ex.Message}"));
        }
    }

    /// <summary>The 404 for an app no silo of the cluster serves.</summary>
    internal static IResult AppNotFound(string appId) =>
        Error(StatusCodes.Status404NotFound, ErrorCodes.AppNotFound, FalHintsClient.AppNotFound(appId).Message);

    private static IResult? NotFound(RequestStatus status, string appId) =>
        status.Result?.Error?.Code == ErrorCodes.RequestNotFound || !string.Equals(status.AppId, appId, StringComparison.Ordinal)
            ? Error(StatusCodes.Status404NotFound, ErrorCodes.RequestNotFound, $"No request '{status.RequestId}' of app '{appId}' is known; it was never submitted or its result has expired.")
            : null;

    private static object Describe(HttpContext http, RequestStatus status, bool logs)
    {
        var urls = $"{BaseUrl(http)}/{status.AppId}/requests/{status.RequestId}";
        return new
        {
            request_id = status.RequestId,
            status = status.State switch
            {
                RequestState.Queued => "IN_QUEUE",
                RequestState.InProgress => "IN_PROGRESS",
                _ => "COMPLETED",
            },
            queue_position = status.State == RequestState.Queued ? status.QueuePosition ?? 0 : (int?)null,
            status_url = urls + "/status",
            response_url = urls,
            cancel_url = urls + "/cancel",
            logs = logs ? status.Logs.Select(l => new { message = l.Message, timestamp = l.Timestamp, level = "INFO", source = "falhints" }) : null,
            runner_id = status.RunnerId,
            hint_hit = status.RunnerId is null ? (bool?)null : status.HintHit,
            attempts = status.Attempts,
            error = status.Result?.Error is { } error ? new { code = error.Code, message = error.Message } : null,
        };
    }

    internal static void AddServedBy(HttpContext http, RequestStatus status)
    {
        if (status.RunnerId is { } runner)
        {
            http.Response.Headers[RunnerHeader] = runner;
            http.Response.Headers[HintHitHeader] = status.HintHit ? "true" : "false";
        }
    }

    internal static int StatusFor(string code) => code switch
    {
        ErrorCodes.InvalidInput or ErrorCodes.ModelNotFound or ErrorCodes.ModelCorrupt => StatusCodes.Status422UnprocessableEntity,
        ErrorCodes.AppNotFound or ErrorCodes.EndpointNotFound or ErrorCodes.RequestNotFound => StatusCodes.Status404NotFound,
        ErrorCodes.QueueFull => StatusCodes.Status429TooManyRequests,
        ErrorCodes.StartTimeout or ErrorCodes.RequestTimeout => StatusCodes.Status504GatewayTimeout,
        ErrorCodes.Cancelled => StatusCodes.Status400BadRequest,
        ErrorCodes.InsufficientMemory => StatusCodes.Status507InsufficientStorage,
        _ => StatusCodes.Status500InternalServerError,
    };

    internal static string BaseUrl(HttpContext http) => $"{http.Request.Scheme}://{http.Request.Host}";

    /// <summary>Replaces every <c>data:</c> URL in the output by a URL of this gateway that serves the bytes.</summary>
    internal static string WithFileUrls(string outputJson, FileCache files, string baseUrl)
    {
        var root = JsonNode.Parse(outputJson);
        Rewrite(root);
        return root?.ToJsonString(Json) ?? "null";

        void Rewrite(JsonNode? node)
        {
            switch (node)
            {
                case JsonObject obj:
                    if (obj["url"] is JsonValue url && url.TryGetValue<string>(out var text) && text.StartsWith("data:", StringComparison.Ordinal)
                        && text.IndexOf(";base64,", StringComparison.Ordinal) is var marker and > 5)
                    {
                        var contentType = text[5..marker];
                        var name = files.Add(Convert.FromBase64String(text[(marker + 8)..]), contentType);
                        obj["url"] = $"{baseUrl}/files/{name}";
                    }

                    foreach (var (_, child) in obj.ToList())
                    {
                        Rewrite(child);
                    }

                    break;
                case JsonArray array:
                    foreach (var child in array)
                    {
                        Rewrite(child);
                    }

                    break;
            }
        }
    }
}
