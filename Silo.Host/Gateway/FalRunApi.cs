using System.Collections.Immutable;
using FalHints.Client.Contracts;
using FalHints.Client.Requests;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Options;

namespace FalHints.Host.Gateway;

/// <summary>
/// fal's direct calls (<c>https://fal.run/{owner}/{app}[/path]</c>, which <see cref="FalProxy"/> maps here):
/// <c>POST /run/{owner}/{app}[/{path}]</c> waits for the request and answers its output, as <c>fal.run</c> expects;
/// with <c>Accept: text/event-stream</c> (<c>fal.stream</c>, which calls the app's <c>/stream</c> endpoint) it sends each
/// partial output as a server-sent event as the runner produces it, the final output last. The request is placed by the
/// router like any other (hints included), but, as on fal, never retried, and cancelled when the caller hangs up.
/// </summary>
public static class FalRunApi
{
    /// <summary>Where the direct calls live on the gateway.</summary>
    public static readonly PathString Prefix = "/run";

    private const string RequestIdHeader = "x-fal-request-id";
    private static readonly TimeSpan LongPoll = TimeSpan.FromSeconds(20);

    /// <summary>Maps <c>POST /run/{owner}/{app}/{**path}</c>.</summary>
    public static IEndpointRouteBuilder MapFalRunApi(this IEndpointRouteBuilder routes)
    {
        routes.MapPost("/run/{owner}/{app}/{**path}", RunAsync);
        return routes;
    }

    internal static async Task RunAsync(HttpContext http, string owner, string app, string? path, FalHintsClient client, IGrainFactory grains,
        FileCache files, IOptions<GatewayOptions> options, IOptions<StorageOptions> storage)
    {
        var appId = $"{owner}/{app}";
        if (!AppIds.TryValidate(appId, out var appError))
        {
            await FalQueueApi.Error(StatusCodes.Status400BadRequest, ErrorCodes.InvalidInput, appError).ExecuteAsync(http);
            return;
        }

        if (await client.Apps.RefusesAsync(appId, http.RequestAborted))
        {
            await FalQueueApi.AppNotFound(appId).ExecuteAsync(http);
            return;
        }

        if (FalQueueApi.ReadOptions(http.Request, out var hint, out var submitOptions) is { } headerError)
        {
            await headerError.ExecuteAsync(http);
            return;
        }

        var (input, bodyError) = await FalQueueApi.ReadInputAsync(http.Request, options.Value.MaxBodyBytes, options.Value.MaxDrainBytes);
        if (bodyError is null)
        {
            (input, bodyError) = FalStorageApi.InlineFiles(input!, http.Request, files, storage.Value);
        }

        if (bodyError is not null)
        {
            await bodyError.ExecuteAsync(http);
            return;
        }

        // fal never retries direct calls: a stream that started again on another runner would repeat its events.
        var (handle, unavailable) = await StorageWait.EnqueueAsync(http, options.Value.StorageUnavailableWait,
            cancellationToken => client.EnqueueAsync(appId, input!, hint, "/" + (path ?? string.Empty), submitOptions with { NoRetry = true }, cancellationToken));
        if (unavailable is not null)
        {
            await unavailable.ExecuteAsync(http);
            return;
        }

        if (handle!.Submitted!.Result?.Error is { } refused)
        {
            await FalQueueApi.Error(FalQueueApi.StatusFor(refused.Code), refused.Code, refused.Message).ExecuteAsync(http);
            return;
        }

        http.Response.Headers[RequestIdHeader] = handle.RequestId;
        try
        {
            if (http.Request.Headers.Accept.Any(a => a?.Contains("text/event-stream", StringComparison.OrdinalIgnoreCase) == true))
            {
                await StreamAsync(http, handle, grains.GetGrain<IPartialOutputsGrain>(handle.RequestId), files);
            }
            else
            {
                await AnswerAsync(http, await handle.WaitForCompletionAsync(http.RequestAborted), files);
            }
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
        {
            // The caller hung up: nobody will read the result, so the request stops.
            await handle.CancelAsync(CancellationToken.None);
        }
    }

    /// <summary>The output, or the error that names the failure, as the queue API answers a result.</summary>
    private static Task AnswerAsync(HttpContext http, RequestStatus status, FileCache files)
    {
        FalQueueApi.AddServedBy(http, status);
        if (status.Result!.Error is { } error)
        {
            if (error.Code == ErrorCodes.StartTimeout)
            {
                http.Response.Headers["x-fal-request-timeout-type"] = "user";
            }

            return FalQueueApi.Error(FalQueueApi.StatusFor(error.Code), error.Code, error.Message).ExecuteAsync(http);
        }

        return Results.Text(FalQueueApi.WithFileUrls(status.Result.OutputJson!, files, FalQueueApi.BaseUrl(http)), "application/json").ExecuteAsync(http);
    }

    /// <summary>
    /// Sends partial outputs as they are published, then the final output. The response starts with the first event, so
    /// a request that fails before it gets a plain HTTP error; one that fails later ends with an <c>error</c> event and a
    /// broken connection, which fal's client reports as an error.
    /// </summary>
    private static async Task StreamAsync(HttpContext http, FalRequestHandle handle, IPartialOutputsGrain partials, FileCache files)
    {
        var cancellation = http.RequestAborted;
        var baseUrl = FalQueueApi.BaseUrl(http);
        var started = false;
        var after = -1;
        Task<ImmutableArray<PartialOutput>>? read = null;
        Task<RequestStatus>? wait = null;
        try
        {
            while (true)
            {
                read ??= partials.ReadAsync(after, LongPoll);
                wait ??= handle.WaitForCompletionAsync(cancellation);
                if (await Task.WhenAny(read, wait).WaitAsync(cancellation) == read)
                {
                    after = await SendAsync(await read);
                    read = null;
                    continue;
                }

                var status = await wait;
                // The runner published every partial output before it reported the request complete.
                after = await SendAsync(read.IsCompleted ? await read : await partials.ReadAsync(after, TimeSpan.Zero));
                if (status.Result!.Error is { } error)
                {
                    if (!started)
                    {
                        await AnswerAsync(http, status, files);
                        return;
                    }

                    await WriteEventAsync("error", System.Text.Json.JsonSerializer.Serialize(
                        new { detail = error.Message, error_type = FalErrorResult.ErrorType(error.Code), error_code = error.Code }, GatewayJson.Options));
                    http.Abort();
                    return;
                }

                await WriteEventAsync(null, FalQueueApi.WithFileUrls(status.Result.OutputJson!, files, baseUrl));
                return;
            }
        }
        finally
        {
            _ = partials.ReleaseAsync();
        }

        async Task<int> SendAsync(ImmutableArray<PartialOutput> batch)
        {
            foreach (var partial in batch.Where(p => p.Index > after))
            {
                await WriteEventAsync(null, FalQueueApi.WithFileUrls(partial.OutputJson, files, baseUrl));
                after = partial.Index;
            }

            return after;
        }

        async Task WriteEventAsync(string? name, string json)
        {
            if (!started)
            {
                started = true;
                http.Response.ContentType = "text/event-stream";
                http.Response.Headers.CacheControl = "no-cache";
            }

            await http.Response.WriteAsync(name is null ? $"data: {json}\n\n" : $"event: {name}\ndata: {json}\n\n", cancellation);
            await http.Response.Body.FlushAsync(cancellation);
        }
    }
}
