using FalHints.Host.Gateway;
using System.CommandLine;
using System.Globalization;
using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using FalHints.Client.Contracts;

namespace FalHints.Host.Commands;

/// <summary>The commands' way to a cluster through its HTTP gateway (fal's queue API) rather than the Orleans client port.</summary>
internal sealed class HttpGateway : IDisposable
{
    private readonly HttpClient _http;

    private HttpGateway(HttpClient http) => _http = http;

    /// <summary>The gateway <c>--url</c> names, or null when it is not given; a malformed URL is a <see cref="CommandLineException"/>.</summary>
    public static HttpGateway? From(ParseResult parse, ClusterConnection.Options options)
    {
        if (parse.GetValue(options.Url) is not { } url)
        {
            return null;
        }

        if (!Uri.TryCreate(url, UriKind.Absolute, out var baseUri) || (baseUri.Scheme != Uri.UriSchemeHttp && baseUri.Scheme != Uri.UriSchemeHttps))
        {
            throw new CommandLineException($"--url '{url}' is not an http or https URL such as {GatewayOptions.DefaultUrl}.");
        }

        var http = new HttpClient { BaseAddress = baseUri, Timeout = Timeout.InfiniteTimeSpan };
        if ((parse.GetValue(options.Key) ?? Environment.GetEnvironmentVariable("FAL_KEY")) is { Length: > 0 } key)
        {
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Key", key);
        }

        return new HttpGateway(http);
    }

    /// <summary>Queues a request; returns its id.</summary>
    public async Task<string> SubmitAsync(string appId, string inputJson, string? hint, SubmitOptions options, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/{appId}") { Content = new StringContent(inputJson, Encoding.UTF8, "application/json") };
        if (hint is not null)
        {
            request.Headers.TryAddWithoutValidation("X-Fal-Runner-Hint", hint);
        }

        request.Headers.Add("X-Fal-Queue-Priority", options.Priority == RequestPriority.Low ? "low" : "normal");
        if (options.StartTimeout is { } timeout)
        {
            request.Headers.Add("X-Fal-Request-Timeout", timeout.TotalSeconds.ToString(CultureInfo.InvariantCulture));
        }

        using var submitted = await SendAsync(request, cancellationToken);
        return submitted.RootElement.GetProperty("request_id").GetString()!;
    }

    /// <summary>The request's status each time it changes (server-sent events), ending with the completed one.</summary>
    public async IAsyncEnumerable<JsonElement> StreamStatusAsync(string appId, string requestId, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/{appId}/requests/{requestId}/status/stream");
        using var response = await SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        await EnsureSuccessAsync(response, cancellationToken);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancellationToken));
        while (await reader.ReadLineAsync(cancellationToken) is { } line)
        {
            if (line.StartsWith("data: ", StringComparison.Ordinal))
            {
                using var status = JsonDocument.Parse(line["data: ".Length..]);
                yield return status.RootElement.Clone();
            }
        }
    }

    /// <summary>The status of a request (<c>?logs=1</c> with <paramref name="logs"/>).</summary>
    public async Task<JsonElement> StatusAsync(string appId, string requestId, bool logs, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/{appId}/requests/{requestId}/status{(logs ? "?logs=1" : string.Empty)}");
        using var status = await SendAsync(request, cancellationToken);
        return status.RootElement.Clone();
    }

    /// <summary>A completed request's output.</summary>
    public async Task<JsonElement> ResultAsync(string appId, string requestId, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/{appId}/requests/{requestId}");
        using var output = await SendAsync(request, cancellationToken);
        return output.RootElement.Clone();
    }

    /// <summary>Cancels a request; returns the gateway's answer (<c>CANCELLATION_REQUESTED</c> or <c>ALREADY_COMPLETED</c>).</summary>
    public async Task<string> CancelAsync(string appId, string requestId, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Put, $"/{appId}/requests/{requestId}/cancel");
        using var response = await SendAsync(request, HttpCompletionOption.ResponseContentRead, cancellationToken);
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync(cancellationToken));
        if (body.RootElement.TryGetProperty("status", out var status))
        {
            return status.GetString()!;
        }

        throw Failure(response, body.RootElement);
    }

    /// <summary>The bytes behind a file URL of the gateway.</summary>
    public async Task<byte[]> DownloadAsync(string url, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        using var response = await SendAsync(request, HttpCompletionOption.ResponseContentRead, cancellationToken);
        await EnsureSuccessAsync(response, cancellationToken);
        return await response.Content.ReadAsByteArrayAsync(cancellationToken);
    }

    public void Dispose() => _http.Dispose();

    private async Task<JsonDocument> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        using var response = await SendAsync(request, HttpCompletionOption.ResponseContentRead, cancellationToken);
        await EnsureSuccessAsync(response, cancellationToken);
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync(cancellationToken));
    }

    private async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, HttpCompletionOption completion, CancellationToken cancellationToken)
    {
        try
        {
            return await _http.SendAsync(request, completion, cancellationToken);
        }
        catch (HttpRequestException ex)
        {
            throw new CommandLineException($"cannot reach the HTTP gateway at {_http.BaseAddress} ({ex.Message}): is 'serve' running there?");
        }
    }

    private static async Task EnsureSuccessAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        if (response.IsSuccessStatusCode)
        {
            return;
        }

        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        try
        {
            using var body = JsonDocument.Parse(text);
            throw Failure(response, body.RootElement);
        }
        catch (JsonException)
        {
            throw new CommandLineException($"the gateway answered HTTP {(int)response.StatusCode} {response.ReasonPhrase}.");
        }
    }

    private static CommandLineException Failure(HttpResponseMessage response, JsonElement body)
    {
        var detail = body.TryGetProperty("detail", out var d) && d.ValueKind == JsonValueKind.String ? d.GetString() : body.GetRawText();
        var code = body.TryGetProperty("error_code", out var c) ? c.GetString() : null;
        return new CommandLineException($"the gateway answered HTTP {(int)response.StatusCode}{(code is null ? string.Empty : $" ({code})")}: {detail}");
    }
}

/// <summary>A command's failure, told in one line.</summary>
internal sealed class CommandLineException(string message) : Exception(message);
