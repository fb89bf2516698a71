using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using FalHints.Client.Contracts;
using FalHints.Client.Requests;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace FalHints.Host.Gateway;

/// <summary>
/// Posts a request's outcome to its webhook when the request ends, in fal's shape (<c>request_id</c>,
/// <c>gateway_request_id</c>, <c>status</c> <c>OK</c> or <c>ERROR</c>, <c>payload</c>, <c>error</c>), retrying with
/// exponential backoff until the receiver answers 2xx or the attempts run out. The gateway that accepted the request
/// sends it; if that node stops first, the webhook is not sent (the queue API still answers for the request).
/// Redirects are not followed, and <c>localhost</c> is only ever reached on a loopback address.
/// </summary>
public sealed partial class WebhookSender : IHostedService, IDisposable
{
    private readonly IOptions<WebhookOptions> _options;
    private readonly FileCache _files;
    private readonly TimeProvider _time;
    private readonly ILogger<WebhookSender> _logger;
    private readonly HttpClient _http;
    private readonly CancellationTokenSource _stopping = new();
    private int _pending;

    public WebhookSender(IOptions<WebhookOptions> options, FileCache files, TimeProvider time, ILogger<WebhookSender> logger)
    {
        (_options, _files, _time, _logger) = (options, files, time, logger);
        _http = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, ConnectCallback = ConnectAsync }) { Timeout = options.Value.Timeout };
    }

    /// <summary>Webhooks waiting for their request or being delivered.</summary>
    public int Pending => Volatile.Read(ref _pending);

    /// <summary>Delivers the outcome of <paramref name="handle"/>'s request to <paramref name="target"/> (already allowed) once it ends.</summary>
    public void Watch(FalRequestHandle handle, Uri target, string baseUrl)
    {
        Interlocked.Increment(ref _pending);
        _ = DeliverAsync(handle, target, baseUrl);
    }

    /// <inheritdoc />
    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <inheritdoc />
    public Task StopAsync(CancellationToken cancellationToken)
    {
        if (Pending > 0)
        {
            LogUndelivered(_logger, Pending);
        }

        _stopping.Cancel();
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _stopping.Dispose();
        _http.Dispose();
    }

    private async Task DeliverAsync(FalRequestHandle handle, Uri target, string baseUrl)
    {
        var stopping = _stopping.Token;
        try
        {
            // Waiting here never cancels the request: its caller chose a webhook instead of waiting.
            var status = await handle.WaitForCompletionAsync(stopping);
            var body = Payload(status.Result!, baseUrl);
            var options = _options.Value;
            for (var attempt = 1; ; attempt++)
            {
                var failure = await PostAsync(target, body, stopping);
                if (failure is null)
                {
                    LogDelivered(_logger, handle.RequestId, attempt);
                    return;
                }

                if (attempt >= options.MaxAttempts)
                {
                    LogGaveUp(_logger, handle.RequestId, target.GetLeftPart(UriPartial.Path), attempt, failure);
                    return;
                }

                var delay = options.DelayAfter(attempt);
                LogRetrying(_logger, handle.RequestId, attempt, failure, delay.TotalSeconds);
                await Task.Delay(delay, _time, stopping);
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            // The node is stopping; StopAsync logged what is left.
        }
        catch (Exception ex)
        {
            LogFailed(_logger, handle.RequestId, ex.Message);
        }
        finally
        {
            Interlocked.Decrement(ref _pending);
        }
    }

    /// <summary>Null on a 2xx answer, else what went wrong.</summary>
    private async Task<string?> PostAsync(Uri target, string body, CancellationToken cancellationToken)
    {
        try
        {
            using var content = new StringContent(body, Encoding.UTF8, "application/json");
            using var response = await _http.PostAsync(target, content, cancellationToken);
            return response.IsSuccessStatusCode ? null : $"HTTP {(int)response.StatusCode}";
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
        {
            return ex is TaskCanceledException ? $"no answer within {_options.Value.Timeout.TotalSeconds:0} s" : ex.Message;
        }
    }

    private string Payload(InferenceResult result, string baseUrl)
    {
        var error = result.Error;
        var payload = error is null
            ? JsonNode.Parse(FalQueueApi.WithFileUrls(result.OutputJson!, _files, baseUrl))
            : new JsonObject { ["detail"] = error.Message, ["error_type"] = FalErrorResult.ErrorType(error.Code), ["error_code"] = error.Code };
        return new JsonObject
        {
            ["request_id"] = result.RequestId,
            ["gateway_request_id"] = result.RequestId,
            ["status"] = error is null ? "OK" : "ERROR",
            ["payload"] = payload,
            ["error"] = error?.Message,
        }.ToJsonString(GatewayJson.Options);
    }

    /// <summary>Connects as the allow-list was checked: <c>localhost</c> only to loopback addresses.</summary>
    private static async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        var host = context.DnsEndPoint.Host;
        var addresses = IPAddress.TryParse(host, out var literal) ? [literal] : await Dns.GetHostAddressesAsync(host, cancellationToken);
        if (string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase))
        {
            addresses = [.. addresses.Where(IPAddress.IsLoopback)];
        }

        if (addresses.Length == 0)
        {
            throw new HttpRequestException($"'{host}' has no address this gateway may post to.");
        }

        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(addresses, context.DnsEndPoint.Port, cancellationToken);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    [LoggerMessage(1, LogLevel.Information, "Delivered the webhook of request {RequestId} on attempt {Attempt}")]
    private static partial void LogDelivered(ILogger logger, string requestId, int attempt);

    [LoggerMessage(2, LogLevel.Warning, "The webhook of request {RequestId} failed on attempt {Attempt} ({Failure}); trying again in {Seconds:0.#} s")]
    private static partial void LogRetrying(ILogger logger, string requestId, int attempt, string failure, double seconds);

    [LoggerMessage(3, LogLevel.Error, "Gave up the webhook of request {RequestId} to {Target} after {Attempts} attempts; the last failed with {Failure}")]
    private static partial void LogGaveUp(ILogger logger, string requestId, string target, int attempts, string failure);

    [LoggerMessage(4, LogLevel.Error, "The webhook of request {RequestId} could not be sent: {Reason}")]
    private static partial void LogFailed(ILogger logger, string requestId, string reason);

    [LoggerMessage(5, LogLevel.Warning, "The gateway stops with {Count} webhooks not delivered yet; their requests stay readable through the queue API")]
    private static partial void LogUndelivered(ILogger logger, int count);
}
