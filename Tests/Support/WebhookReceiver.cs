using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Text.Json;

namespace FalHints.Tests.Support;

/// <summary>
/// A webhook receiver on a free loopback port: it answers 503 while <see cref="Refusing"/> (as a receiver that is down
/// would, so the sender must retry), else 200, and keeps every body it accepted by request id.
/// </summary>
public sealed class WebhookReceiver : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly ConcurrentDictionary<string, List<JsonElement>> _accepted = new(StringComparer.Ordinal);
    private readonly Task _serving;
    private int _refused;

    public WebhookReceiver()
    {
        var port = HostProcess.FreeTcpPort().ToString(CultureInfo.InvariantCulture);
        Url = $"http://127.0.0.1:{port}/hook/";
        _listener.Prefixes.Add(Url);
        _listener.Start();
        _serving = ServeAsync();
    }

    /// <summary>The URL to name in <c>fal_webhook</c>.</summary>
    public string Url { get; }

    /// <summary>Whether deliveries are answered 503 now.</summary>
    public bool Refusing { get; set; }

    /// <summary>Deliveries answered 503 so far.</summary>
    public int Refused => Volatile.Read(ref _refused);

    /// <summary>The bodies accepted for <paramref name="requestId"/>.</summary>
    public IReadOnlyList<JsonElement> Accepted(string requestId) =>
        _accepted.TryGetValue(requestId, out var bodies) ? [.. bodies] : [];

    /// <summary>Waits until a body for <paramref name="requestId"/> has been accepted and returns the first.</summary>
    public async Task<JsonElement> DeliveredAsync(string requestId, TimeSpan timeout) =>
        (await Eventually.ValueAsync(() => Task.FromResult(Accepted(requestId)), b => b.Count > 0, timeout, $"the webhook of {requestId} delivered"))[0];

    public void Dispose()
    {
        _listener.Close();
        _ = _serving.Exception;
    }

    private async Task ServeAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException)
            {
                return;
            }

            if (Refusing)
            {
                Interlocked.Increment(ref _refused);
                context.Response.StatusCode = 503;
            }
            else
            {
                var body = await JsonSerializer.DeserializeAsync<JsonElement>(context.Request.InputStream);
                var id = body.GetProperty("request_id").GetString()!;
                var bodies = _accepted.GetOrAdd(id, _ => []);
                lock (bodies)
                {
                    bodies.Add(body);
                }

                context.Response.StatusCode = 200;
            }

            context.Response.Close();
        }
    }
}
