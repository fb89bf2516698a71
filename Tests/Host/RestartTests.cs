using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using FalHints.Runner.Models;
using FalHints.Tests.Support;

namespace FalHints.Tests.Host;

/// <summary>
/// A model store with the tiny models and one large model whose first load takes a while, so a request runs long enough
/// to be caught running, and the ones behind it still queued, on an idle machine too: the loader reads at page-cache
/// speed (a 128 MB load takes about 50 ms on the CI machine kind, about as long as the twelve calls the test makes
/// meanwhile), so the model is 1 GB (a few hundred milliseconds), within a CPU runner's default 2 GB budget.
/// </summary>
public sealed class RestartModelStore : IDisposable
{
    public const string Slow = "slow/large";

    private readonly TinyModelStore _tiny = new();

    public RestartModelStore() => DemoModels.Fill(_tiny.Store, [new DemoModelSpec(Slow, 1L << 30)]);

    public string Root => _tiny.Root;

    public void Dispose() => _tiny.Dispose();
}

/// <summary>
/// The embedded default (one node, request state in SQLite) stopped with queued and running requests, by kill -9 and
/// by SIGTERM, then started again on the same data folder: every accepted request completes, none answers 404, and the
/// queued ones start in the order and priority they were accepted in. Webhooks owed when the node stops are delivered
/// after the restart: the receiver refuses them while the first process lives.
/// </summary>
public sealed class RestartTests(RestartModelStore models) : IClassFixture<RestartModelStore>
{
    private const string App = "/falhints/any-model";
    private static readonly TimeSpan Startup = TimeSpan.FromSeconds(90);
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(120);

    // Quick retries, and enough of them that a webhook refused for the first process's whole life is still owed after.
    private static readonly Dictionary<string, string> QuickWebhooks = new()
    {
        ["FalHints__Gateway__Webhooks__FirstRetryDelay"] = "00:00:00.200",
        ["FalHints__Gateway__Webhooks__MaxRetryDelay"] = "00:00:01",
        ["FalHints__Gateway__Webhooks__MaxAttempts"] = "1000",
    };

    [Fact]
    public Task A_killed_node_restarts_with_every_accepted_request_and_retries_the_running_one() =>
        StopAndRestartAsync(graceful: false);

    [Fact]
    public Task A_node_stopped_with_sigterm_finishes_the_running_request_and_keeps_the_queued_ones() =>
        StopAndRestartAsync(graceful: true);

    private async Task StopAndRestartAsync(bool graceful)
    {
        using var data = new TempDirectory();
        var siloPort = HostProcess.FreeTcpPort().ToString(CultureInfo.InvariantCulture);
        var gatewayPort = HostProcess.FreeTcpPort().ToString(CultureInfo.InvariantCulture);
        var httpPort = HostProcess.FreeTcpPort();
        string[] serve = ["serve", "--models", models.Root, "--runners", "1", "--silo-name", "restart-test", "--silo-port", siloPort,
            "--gateway-port", gatewayPort, "--http-port", httpPort.ToString(CultureInfo.InvariantCulture), "--data", data.Path];
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{httpPort}"), Timeout = TimeSpan.FromSeconds(30) };
        using var hooks = new WebhookReceiver { Refusing = true };

        var first = HostProcess.Start(QuickWebhooks, serve);
        List<(string Id, string Priority)> queued = [];
        string running;
        try
        {
            await first.WaitForOutputAsync("FalHints is serving", Startup);

            // One runner: the slow request runs (loading its model), everything after it queues. The app's hint field
            // routes each by its model, and a freed runner takes a waiting request for a model it holds before older
            // ones: no two requests of a class share a model, so the order they were accepted in is what decides.
            running = await SubmitAsync(http, RestartModelStore.Slow, "normal", hooks.Url);
            await StatusAsync(http, running, s => s.GetProperty("status").GetString() == "IN_PROGRESS", "running");
            foreach (var (model, priority) in new[] { ("tiny/alpha", "low"), ("tiny/beta", "normal"), ("tiny/gamma", "normal"), ("tiny/prewarm", "low"), ("tiny/delta", "normal"), ("tiny/alpha", "normal") })
            {
                queued.Add((await SubmitAsync(http, model, priority, queued.Count == 0 ? hooks.Url : null), priority));
            }

            foreach (var (id, _) in queued)
            {
                var status = await StatusAsync(http, id, _ => true, "readable");
                Assert.Equal("IN_QUEUE", status.GetProperty("status").GetString());
            }

            if (graceful)
            {
                first.Terminate();
                await first.WaitForExitAsync(Startup);
                Assert.True(first.ExitCode == 0, first.Output);
            }
            else
            {
                first.Kill();
                await first.WaitForExitAsync(Startup);
            }
        }
        finally
        {
            first.Dispose();
        }

        hooks.Refusing = false;
        using var second = HostProcess.Start(QuickWebhooks, serve);
        await second.WaitForOutputAsync("FalHints is serving", Startup);
        var all = queued.Select(q => q.Id).Prepend(running).ToList();
        var finals = new Dictionary<string, JsonElement>();
        foreach (var id in all)
        {
            finals[id] = await StatusAsync(http, id, s => s.GetProperty("status").GetString() == "COMPLETED", "completed after the restart");
            var result = await http.GetAsync($"{App}/requests/{id}");
            Assert.True(result.StatusCode == HttpStatusCode.OK, $"{id}: {(int)result.StatusCode} {await result.Content.ReadAsStringAsync()}\n{second.Output}");
        }

        // The running request: finished by the drain on SIGTERM; after kill -9, retried as if its runner had died.
        Assert.Equal(graceful ? 1 : 2, finals[running].GetProperty("attempts").GetInt32());

        // The queued ones started after the restart, normal before low, each class in the order it was accepted.
        var expected = queued.Where(q => q.Priority == "normal").Concat(queued.Where(q => q.Priority == "low")).Select(q => q.Id).ToList();
        var started = queued.Select(q => q.Id).OrderBy(id => StartedAt(finals[id])).ToList();
        Assert.Equal(expected, started);
        Assert.All(queued, q => Assert.Equal(1, finals[q.Id].GetProperty("attempts").GetInt32()));

        // Both webhooks (the running request's, finished before or after the stop, and a queued one's) arrive once the
        // receiver takes them, from the restarted node.
        foreach (var id in new[] { running, queued[0].Id })
        {
            var body = await hooks.DeliveredAsync(id, Patience);
            Assert.Equal("OK", body.GetProperty("status").GetString());
            Assert.True(body.GetProperty("payload").TryGetProperty("image", out _), body.ToString());
        }
    }

    private static DateTimeOffset StartedAt(JsonElement status) =>
        status.GetProperty("logs").EnumerateArray()
            .Where(l => l.GetProperty("message").GetString()!.StartsWith("started on runner", StringComparison.Ordinal))
            .Select(l => l.GetProperty("timestamp").GetDateTimeOffset()).Last();

    private static async Task<string> SubmitAsync(HttpClient http, string model, string priority, string? webhook = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, webhook is null ? App : $"{App}?fal_webhook={Uri.EscapeDataString(webhook)}")
        {
            Content = new StringContent(JsonSerializer.Serialize(new { model, prompt = "a restart" }), Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("X-Fal-Queue-Priority", priority);
        using var response = await http.SendAsync(request);
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return body.RootElement.GetProperty("request_id").GetString()!;
    }

    private static Task<JsonElement> StatusAsync(HttpClient http, string id, Func<JsonElement, bool> done, string what) =>
        Eventually.ValueAsync(async () =>
        {
            using var response = await http.GetAsync($"{App}/requests/{id}/status?logs=1");
            var text = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{id}: {(int)response.StatusCode} {text}");
            return JsonDocument.Parse(text).RootElement.Clone();
        }, done, Patience, $"{id} {what}");
}
