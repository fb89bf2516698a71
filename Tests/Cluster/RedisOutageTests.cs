using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using FalHints.Client.Contracts;
using FalHints.Tests.Support;

namespace FalHints.Tests.Cluster;

/// <summary>
/// A node on Redis while Redis is down and back: <c>/health</c> says so, a submission gets a retryable 503 within
/// the gateway's bounded wait instead of hanging, and a caller's bad input is one warning line in the log, not an
/// error with a stack trace.
/// </summary>
public sealed class RedisOutageTests(TinyModelStore models) : IClassFixture<TinyModelStore>
{
    private const string App = "/falhints/any-model";
    private static readonly TimeSpan Startup = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task While_redis_is_down_health_fails_and_submissions_get_a_503_within_the_bounded_wait()
    {
        using var redis = await RedisServer.StartAsync();
        var httpPort = HostProcess.FreeTcpPort();
        using var node = HostProcess.Start(
            new Dictionary<string, string> { ["FalHints__Gateway__StorageUnavailableWait"] = "00:00:03" },
            "serve", "--cluster", "redis", "--redis", redis.ConnectionString, "--silo-name", "outage", "--advertise", "127.0.0.1",
            "--silo-port", Port(), "--gateway-port", Port(), "--http-port", httpPort.ToString(CultureInfo.InvariantCulture),
            "--runners", "1", "--models", models.Root);
        await node.WaitForOutputAsync("FalHints is serving", Startup);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{httpPort}"), Timeout = TimeSpan.FromSeconds(100) };
        await Eventually.ValueAsync(() => http.GetAsync("/health"), r => r.StatusCode == HttpStatusCode.OK, Startup, "healthy");
        Assert.Equal(HttpStatusCode.OK, (await SubmitAsync(http)).StatusCode);

        // Callers' mistakes: answered with a 4xx each, and none logged as an error with a stack trace.
        using var notUtf8 = new ByteArrayContent([(byte)'{', (byte)'"', 0xFF, (byte)'"', (byte)':', (byte)'1', (byte)'}']);
        Assert.Equal(HttpStatusCode.BadRequest, (await http.PostAsync(App, notUtf8)).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await http.PostAsync(App, new StringContent("{not json", Encoding.UTF8, "application/json"))).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync($"{App}/requests/{new string('9', 400)}")).StatusCode);

        await redis.StopAsync();
        var unhealthy = await Eventually.ValueAsync(() => http.GetAsync("/health"), r => r.StatusCode == HttpStatusCode.ServiceUnavailable,
            TimeSpan.FromSeconds(15), "unhealthy while Redis is down");
        Assert.Contains("request store", await unhealthy.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        var clock = Stopwatch.StartNew();
        var refused = await SubmitAsync(http);
        var waited = clock.Elapsed;
        var body = await refused.Content.ReadAsStringAsync();
        Assert.True(refused.StatusCode == HttpStatusCode.ServiceUnavailable, $"{(int)refused.StatusCode} after {waited}: {body}");
        Assert.Equal(ErrorCodes.ClusterUnavailable, JsonDocument.Parse(body).RootElement.GetProperty("error_code").GetString());
        Assert.Equal("1", refused.Headers.GetValues("Retry-After").Single());
        Assert.True(waited < TimeSpan.FromSeconds(20), $"the submission waited {waited}, above the configured 3 s and its margin");

        await redis.RestartAsync();
        await Eventually.ValueAsync(() => http.GetAsync("/health"), r => r.StatusCode == HttpStatusCode.OK, TimeSpan.FromSeconds(60), "healthy again");
        Assert.Equal(HttpStatusCode.OK, (await SubmitAsync(http)).StatusCode);

        Assert.DoesNotContain("fail: Microsoft.AspNetCore", node.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("An unhandled exception has occurred", node.Output, StringComparison.Ordinal);
    }

    private static string Port() => HostProcess.FreeTcpPort().ToString(CultureInfo.InvariantCulture);

    private static Task<HttpResponseMessage> SubmitAsync(HttpClient http) =>
        http.PostAsync(App, new StringContent("""{"model":"tiny/alpha","prompt":"an outage"}""", Encoding.UTF8, "application/json"));
}
