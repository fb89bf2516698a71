using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using FalHints.Client.Contracts;
using FalHints.Router.Requests;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace FalHints.Host.Gateway;

/// <summary>
/// Posts a request's outcome to its webhook in fal's shape (<c>request_id</c>, <c>gateway_request_id</c>, <c>status</c>
/// <c>OK</c> or <c>ERROR</c>, <c>payload</c>, <c>error</c>), for the request grains of this node: the webhook is stored
/// with its request, and whichever node holds the request when it ends delivers it, retrying with exponential backoff
/// until the receiver answers 2xx or the attempts run out (the grain keeps the count, so a node that stops leaves the
/// rest to the next). Each delivery is checked against this node's allow-list again; redirects are not followed, and
/// <c>localhost</c> is only ever reached on a loopback address.
/// </summary>
public sealed partial class WebhookSender : IWebhookDelivery, IHostedService, IDisposable
{
    private readonly IOptions<WebhookOptions> _options;
    private readonly FileCache _files;
    private readonly ILogger<WebhookSender> _logger;
    private readonly HttpClient _http;
    private readonly CancellationTokenSource _stopping = new();

    public WebhookSender(IOptions<WebhookOptions> options, FileCache files, ILogger<WebhookSender> logger)
    {
        (_options, _files, _logger) = (options, files, logger);
        _http = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, ConnectCallback = ConnectAsync }) { Timeout = options.Value.Timeout };
    }

    /// <inheritdoc />
    public int MaxAttempts => _options.Value.MaxAttempts;

    /// <inheritdoc />
    public TimeSpan DelayAfter(int attempt) => _options.Value.DelayAfter(attempt);

    /// <inheritdoc />
    public async Task<string?> DeliverAsync(InferenceResult result, WebhookTarget target, CancellationToken cancellationToken)
    {
        if (!_options.Value.TryAllow(target.Url, out var uri, out var refused))
        {
            return refused;
        }

        using var cancellation = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stopping.Token);
        var failure = await PostAsync(uri, Payload(result, target.BaseUrl), cancellation.Token);
        if (failure is null)
        {
            LogDelivered(_logger, result.RequestId);
        }
        else
        {
            LogFailed(_logger, result.RequestId, uri.GetLeftPart(UriPartial.Path), failure);
        }

        return failure;
    }

    /// <inheritdoc />
    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <inheritdoc />
    public Task StopAsync(CancellationToken cancellationToken)
    {
        // A delivery cut short counts as failed; its request keeps the webhook owed for the next attempt.
        _stopping.Cancel();
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _stopping.Dispose();
        _http.Dispose();
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
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
        {
            return cancellationToken.IsCancellationRequested ? "the node stopped during the delivery"
                : ex is TaskCanceledException ? $"no answer within {_options.Value.Timeout.TotalSeconds:0} s" : ex.Message;
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

    [LoggerMessage(1, LogLevel.Information, "Delivered the webhook of request {RequestId}")]
    private static partial void LogDelivered(ILogger logger, string requestId);

    [LoggerMessage(2, LogLevel.Warning, "The webhook of request {RequestId} to {Target} failed ({Failure}); its request tries again after its backoff")]
    private static partial void LogFailed(ILogger logger, string requestId, string target, string failure);
}
