using System.Buffers;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using FalHints.Client.Contracts;
using FalHints.Client.Requests;
using MessagePack;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace FalHints.Host.Gateway;

/// <summary>
/// fal's realtime API (<c>fal.realtime.connect</c>): a WebSocket at <c>/run/{owner}/{app}[/{path}]/realtime</c> (fal's
/// <c>wss://fal.run/{owner}/{app}/realtime</c>) on which every message is one input and every answer one output, in
/// order. Messages are MessagePack (fal's client's default) or JSON text; each answer is written as its input was. An
/// input runs like a direct call (<see cref="FalRunApi"/>): placed by the router (the app's hint field applies), never
/// retried, cancelled when the connection closes. While one input runs, up to <c>max_buffering</c> more wait (fal's query
/// parameter, 1 to 60; default <see cref="DefaultBuffering"/>); an input that finds the buffer full gets an error
/// message (<c>{"type": "x-fal-error", "error": "BUFFER_FULL", ...}</c>), never silence. A failed input gets
/// <c>{"type": "x-fal-error", "error": error_type, "reason": detail}</c>, as fal's client expects; the connection stays open.
/// With API keys configured, the connection needs <c>?fal_jwt_token=</c> from <see cref="RealtimeTokens"/> (browsers cannot
/// send headers on a WebSocket) or an <c>Authorization: Key</c> header; a refused one is accepted, told
/// <c>{"status": "error", "error": "Unauthorized"}</c> (which makes fal's client fetch a new token) and closed with 1008.
/// </summary>
public static partial class FalRealtimeApi
{
    /// <summary>The last path segment of a realtime connection.</summary>
    public const string Segment = "realtime";

    /// <summary>Inputs that may wait while one runs, when the caller does not say (<c>max_buffering</c>).</summary>
    public const int DefaultBuffering = 16;

    private static readonly MessagePackSerializerOptions Untrusted = MessagePackSerializerOptions.Standard
        .WithSecurity(MessagePackSecurity.UntrustedData.WithMaximumObjectGraphDepth(64));

    /// <summary>Maps <c>GET /run/{owner}/{app}/{**path}</c> for WebSocket connections whose path ends in <c>realtime</c>.</summary>
    public static IEndpointRouteBuilder MapFalRealtimeApi(this IEndpointRouteBuilder routes)
    {
        routes.MapGet("/run/{owner}/{app}/{**path}", ConnectAsync);
        return routes;
    }

    /// <summary>True for a WebSocket upgrade to a realtime path: it checks its own token (<see cref="RealtimeTokens"/>).</summary>
    internal static bool IsConnection(HttpRequest request) =>
        HttpMethods.IsGet(request.Method) && request.Path.StartsWithSegments(FalRunApi.Prefix)
        && request.Path.Value!.TrimEnd('/').EndsWith("/" + Segment, StringComparison.Ordinal);

    internal static async Task ConnectAsync(HttpContext http, string owner, string app, string? path, FalHintsClient client, FileCache files,
        ApiKeyStore keys, TimeProvider time, IOptions<GatewayOptions> options, IOptions<StorageOptions> storage, ILoggerFactory loggers)
    {
        var segments = (path ?? string.Empty).Trim('/').Split('/', StringSplitOptions.RemoveEmptyEntries);
        if (segments.Length == 0 || segments[^1] != Segment)
        {
            await FalQueueApi.Error(StatusCodes.Status404NotFound, ErrorCodes.EndpointNotFound,
                $"GET {http.Request.Path} is not served: direct calls are POSTs, and realtime connections end in /{Segment}.").ExecuteAsync(http);
            return;
        }

        if (!http.WebSockets.IsWebSocketRequest)
        {
            await FalQueueApi.Error(StatusCodes.Status400BadRequest, ErrorCodes.InvalidInput,
                $"{http.Request.Path} is fal's realtime API: connect with a WebSocket (fal.realtime.connect).").ExecuteAsync(http);
            return;
        }

        var appId = $"{owner}/{app}";
        if (!AppIds.TryValidate(appId, out var appError))
        {
            await FalQueueApi.Error(StatusCodes.Status400BadRequest, ErrorCodes.InvalidInput, appError).ExecuteAsync(http);
            return;
        }

        var buffering = DefaultBuffering;
        if (http.Request.Query["max_buffering"].FirstOrDefault() is { } bufferingText
            && (!int.TryParse(bufferingText, out buffering) || buffering is < 1 or > 60))
        {
            await FalQueueApi.Error(StatusCodes.Status400BadRequest, ErrorCodes.InvalidInput,
                $"max_buffering is '{bufferingText}'; use a whole number from 1 to 60.").ExecuteAsync(http);
            return;
        }

        // Checked before the app, so a caller without a key or token learns nothing about which apps exist.
        var refusal = keys.Required ? Authorize(http, app, keys, time) : null;
        if (refusal is null && await client.Apps.RefusesAsync(appId, http.RequestAborted))
        {
            await FalQueueApi.AppNotFound(appId).ExecuteAsync(http);
            return;
        }

        using var socket = await http.WebSockets.AcceptWebSocketAsync();
        var logger = loggers.CreateLogger(typeof(FalRealtimeApi).FullName!);
        if (refusal is not null)
        {
            LogRefused(logger, appId, refusal);
            await SendAsync(socket, JsonSerializer.Serialize(new { status = "error", error = "Unauthorized", reason = refusal }), binary: false, CancellationToken.None);
            await socket.CloseAsync(WebSocketCloseStatus.PolicyViolation, "Unauthorized", CancellationToken.None);
            return;
        }

        var endpoint = "/" + string.Join('/', segments[..^1]);
        using var connection = new Connection(http, socket, client, files, appId, endpoint, options.Value, storage.Value, buffering, logger);
        await connection.RunAsync();
    }

    private static string? Authorize(HttpContext http, string app, ApiKeyStore keys, TimeProvider time)
    {
        if (GatewayHosting.PresentedKey(http.Request.Headers.Authorization.FirstOrDefault(), allowBasic: false) is { } key)
        {
            return keys.IsValid(key) ? null : "The API key is not valid.";
        }

        return RealtimeTokens.Check(http.Request.Query["fal_jwt_token"].FirstOrDefault(), app, keys, time.GetUtcNow());
    }

    private static async Task SendAsync(WebSocket socket, string json, bool binary, CancellationToken cancellationToken)
    {
        var bytes = binary ? MessagePackSerializer.ConvertFromJson(json, MessagePackSerializerOptions.Standard, cancellationToken) : Encoding.UTF8.GetBytes(json);
        await socket.SendAsync(bytes, binary ? WebSocketMessageType.Binary : WebSocketMessageType.Text, endOfMessage: true, cancellationToken);
    }

    private static string ErrorMessage(string error, string reason) =>
        JsonSerializer.Serialize(new { type = "x-fal-error", error, reason });

    /// <summary>One realtime connection: a reader that decodes and buffers inputs, and a worker that runs them in order.</summary>
    private sealed class Connection(HttpContext http, WebSocket socket, FalHintsClient client, FileCache files, string appId, string endpoint,
        GatewayOptions options, StorageOptions storage, int buffering, ILogger logger) : IDisposable
    {
        private readonly Channel<(string Input, bool Binary)> _inputs = Channel.CreateBounded<(string, bool)>(
            new BoundedChannelOptions(buffering) { SingleReader = true, SingleWriter = true });

        private readonly SemaphoreSlim _sending = new(1, 1);

        public void Dispose() => _sending.Dispose();

        public async Task RunAsync()
        {
            using var closing = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted);
            var worker = WorkAsync(closing.Token);
            try
            {
                await ReadAsync(closing.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or WebSocketException)
            {
                // The caller hung up without a close handshake.
            }
            finally
            {
                _inputs.Writer.TryComplete();
                await closing.CancelAsync();
                await worker;
            }
        }

        private async Task ReadAsync(CancellationToken cancellationToken)
        {
            var buffer = new ArrayBufferWriter<byte>();
            while (socket.State == WebSocketState.Open)
            {
                buffer.ResetWrittenCount();
                ValueWebSocketReceiveResult received;
                var tooLarge = false;
                do
                {
                    received = await socket.ReceiveAsync(buffer.GetMemory(64 * 1024), cancellationToken);
                    if (buffer.WrittenCount + received.Count > options.MaxBodyBytes)
                    {
                        tooLarge = true;
                    }
                    else
                    {
                        buffer.Advance(received.Count);
                    }
                }
                while (!received.EndOfMessage && !tooLarge && received.MessageType != WebSocketMessageType.Close);

                if (received.MessageType == WebSocketMessageType.Close)
                {
                    await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
                    return;
                }

                if (tooLarge)
                {
                    await socket.CloseAsync(WebSocketCloseStatus.MessageTooBig, $"A message may hold at most {options.MaxBodyBytes} bytes.", CancellationToken.None);
                    return;
                }

                var binary = received.MessageType == WebSocketMessageType.Binary;
                var (input, problem) = Decode(buffer.WrittenMemory, binary);
                if (problem is not null)
                {
                    await SendLockedAsync(ErrorMessage(FalErrorResult.ErrorType(ErrorCodes.InvalidInput), problem), binary, cancellationToken);
                    continue;
                }

                if (!_inputs.Writer.TryWrite((input!, binary)))
                {
                    await SendLockedAsync(ErrorMessage("BUFFER_FULL",
                        $"{buffering} inputs were already waiting on this connection (max_buffering); this one was not run."), binary, cancellationToken);
                }
            }
        }

        private static (string? Input, string? Error) Decode(ReadOnlyMemory<byte> bytes, bool binary)
        {
            string json;
            if (binary)
            {
                try
                {
                    json = MessagePackSerializer.ConvertToJson(bytes, Untrusted);
                }
                catch (Exception ex) when (ex is MessagePackSerializationException or InsufficientExecutionStackException or EndOfStreamException)
                {
                    return (null, $"The message is not valid MessagePack: {ex.GetBaseException().Message}");
                }
            }
            else
            {
                if (GatewayInput.Utf8Problem(bytes.Span) is { } notUtf8)
                {
                    return (null, notUtf8);
                }

                json = Encoding.UTF8.GetString(bytes.Span);
            }

            try
            {
                using var document = JsonDocument.Parse(json);
                return document.RootElement.ValueKind == JsonValueKind.Object
                    ? (document.RootElement.GetRawText(), null)
                    : (null, $"A message must be an object (the app's input), not {document.RootElement.ValueKind}.");
            }
            catch (JsonException ex)
            {
                return (null, $"The message is not a valid input: {ex.Message}");
            }
        }

        private async Task WorkAsync(CancellationToken cancellationToken)
        {
            try
            {
                await foreach (var (input, binary) in _inputs.Reader.ReadAllAsync(cancellationToken))
                {
                    await SendLockedAsync(await RunOneAsync(input, cancellationToken), binary, cancellationToken);
                }
            }
            catch (Exception ex) when (ex is OperationCanceledException or WebSocketException)
            {
                // The connection closed: the input that was running has been cancelled, the others never started.
            }
        }

        /// <summary>Runs one input as a direct call and answers its output with file URLs, or the error message naming the failure.</summary>
        private async Task<string> RunOneAsync(string input, CancellationToken cancellationToken)
        {
            var (inlined, fileError) = FalStorageApi.InlineFiles(input, http.Request, files, storage);
            if (fileError is not null)
            {
                return ErrorMessage(FalErrorResult.ErrorType(ErrorCodes.InvalidInput), "The input names a file this gateway no longer keeps, or too many bytes of files.");
            }

            FalRequestHandle handle;
            try
            {
                handle = await client.EnqueueAsync(appId, inlined!, hint: null, endpoint, SubmitOptions.Default with { NoRetry = true }, cancellationToken);
            }
            catch (ArgumentException ex)
            {
                return ErrorMessage(FalErrorResult.ErrorType(ErrorCodes.InvalidInput), ex.Message);
            }

            if (handle.Submitted?.Result?.Error is { } refused)
            {
                return ErrorMessage(FalErrorResult.ErrorType(refused.Code), refused.Message);
            }

            try
            {
                var status = await handle.WaitForCompletionAsync(cancellationToken);
                return status.Result!.Error is { } error
                    ? ErrorMessage(FalErrorResult.ErrorType(error.Code), error.Message)
                    : FalQueueApi.WithFileUrls(status.Result.OutputJson!, files, FalQueueApi.BaseUrl(http));
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                await handle.CancelAsync(CancellationToken.None);
                throw;
            }
        }

        private async Task SendLockedAsync(string json, bool binary, CancellationToken cancellationToken)
        {
            await _sending.WaitAsync(cancellationToken);
            try
            {
                if (socket.State == WebSocketState.Open)
                {
                    await SendAsync(socket, json, binary, cancellationToken);
                }
            }
            catch (WebSocketException ex)
            {
                LogSendFailed(logger, appId, ex.Message);
            }
            finally
            {
                _sending.Release();
            }
        }
    }

    [LoggerMessage(1, LogLevel.Warning, "Realtime connection to {AppId} refused: {Reason}")]
    private static partial void LogRefused(ILogger logger, string appId, string reason);

    [LoggerMessage(2, LogLevel.Information, "Realtime answer for {AppId} not sent: {Reason}")]
    private static partial void LogSendFailed(ILogger logger, string appId, string reason);
}
