using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using FalHints.Host.Hosting;
using FalHints.Runner.Apps;
using FalHints.Runner.Hosting;
using FalHints.Tests.Runners;
using FalHints.Tests.Support;
using Microsoft.AspNetCore.Builder;

namespace FalHints.Tests.Cluster;

/// <summary>Runs each request until the test releases it.</summary>
public sealed class ReleasedApp : FalApp<KeyInput, KeyOutput>
{
    public const string Id = "test/released";

    public static TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public override string AppId => Id;

    protected override async Task<KeyOutput> RunAsync(KeyInput input, CancellationToken cancellationToken)
    {
        await Release.Task.WaitAsync(cancellationToken);
        return new KeyOutput(input.Key, "released");
    }
}

/// <summary>
/// Two whole nodes on a real Redis: the node that accepted requests with webhooks stops before a request ends, or is
/// killed with SIGKILL while its webhooks are still owed; the node left delivers them.
/// </summary>
public sealed class WebhookFailoverTests(TinyModelStore models) : IClassFixture<TinyModelStore>
{
    private const string AnyModelPath = "/falhints/any-model";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(90);
    private static readonly TimeSpan Startup = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task Webhooks_owed_by_a_killed_node_are_delivered_by_the_node_left()
    {
        using var redis = await RedisServer.StartAsync();
        using var hooks = new WebhookReceiver { Refusing = true };
        var environment = new Dictionary<string, string>
        {
            ["FalHints__Gateway__Webhooks__FirstRetryDelay"] = "00:00:00.200",
            ["FalHints__Gateway__Webhooks__MaxRetryDelay"] = "00:00:01",
            ["FalHints__Gateway__Webhooks__MaxAttempts"] = "1000",
        };
        var (accepting, acceptingPort) = StartNode("kill-a", redis, environment);
        var (holding, holdingPort) = StartNode("kill-b", redis, environment);
        try
        {
            await Task.WhenAll(accepting.WaitForOutputAsync("FalHints is serving", Startup), holding.WaitForOutputAsync("FalHints is serving", Startup));
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };

            // Several requests, so that some of their grains live on the node that is killed (placement may put any there).
            List<string> ids = [];
            foreach (var model in new[] { "tiny/alpha", "tiny/beta", "tiny/gamma", "tiny/delta", "tiny/alpha", "tiny/beta" })
            {
                using var submitted = await http.PostAsJsonAsync(
                    $"http://127.0.0.1:{acceptingPort}{AnyModelPath}?fal_webhook={Uri.EscapeDataString(hooks.Url)}", new { model, prompt = "a webhook" });
                Assert.True(submitted.IsSuccessStatusCode, await submitted.Content.ReadAsStringAsync());
                ids.Add((await submitted.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("request_id").GetString()!);
            }

            // Every request has ended and its webhook was tried (and refused) at least once: each is owed.
            foreach (var id in ids)
            {
                await Eventually.ValueAsync(async () =>
                {
                    using var response = await http.GetAsync($"http://127.0.0.1:{holdingPort}{AnyModelPath}/requests/{id}/status");
                    return response.IsSuccessStatusCode ? await response.Content.ReadFromJsonAsync<JsonElement>() : default;
                }, s => s.ValueKind == JsonValueKind.Object && s.GetProperty("status").GetString() == "COMPLETED", Patience, $"{id} completed");
            }

            await Eventually.ValueAsync(() => Task.FromResult(hooks.Refused), r => r >= ids.Count, Patience, "every webhook tried once");
            accepting.Kill();
            hooks.Refusing = false;

            foreach (var id in ids)
            {
                var body = await hooks.DeliveredAsync(id, Startup);
                Assert.Equal("OK", body.GetProperty("status").GetString());
            }
        }
        finally
        {
            accepting.Dispose();
            holding.Dispose();
        }
    }

    [Fact]
    public async Task The_webhook_of_a_request_whose_accepting_node_stopped_is_delivered_by_the_node_that_holds_it()
    {
        using var redis = await RedisServer.StartAsync();
        using var hooks = new WebhookReceiver();

        var (accepting, acceptingUrl) = await StartAsync(redis, "hook-a");
        var (holding, holdingUrl) = await StartAsync(redis, "hook-b");
        try
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
            using var submitted = await http.PostAsJsonAsync($"{acceptingUrl}/{ReleasedApp.Id}?fal_webhook={Uri.EscapeDataString(hooks.Url)}", new { key = "webhook-failover" });
            Assert.True(submitted.IsSuccessStatusCode, await submitted.Content.ReadAsStringAsync());
            var requestId = (await submitted.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("request_id").GetString()!;
            await StatusAsync(http, acceptingUrl, requestId, "IN_PROGRESS");

            await accepting.StopAsync();
            await accepting.DisposeAsync();
            ReleasedApp.Release.TrySetResult();

            // The caller reads the request through the node left; it ends there, and that node posts the webhook.
            await StatusAsync(http, holdingUrl, requestId, "COMPLETED");
            var body = await hooks.DeliveredAsync(requestId, Patience);
            Assert.Equal(requestId, body.GetProperty("request_id").GetString());
            Assert.Equal("OK", body.GetProperty("status").GetString());
            Assert.Equal("webhook-failover", body.GetProperty("payload").GetProperty("key").GetString());
        }
        finally
        {
            await holding.StopAsync();
            await holding.DisposeAsync();
        }
    }

    private (HostProcess Node, int HttpPort) StartNode(string name, RedisServer redis, Dictionary<string, string> environment)
    {
        var httpPort = HostProcess.FreeTcpPort();
        var node = HostProcess.Start(environment, "serve", "--cluster", "redis", "--redis", redis.ConnectionString, "--silo-name", name,
            "--silo-port", HostProcess.FreeTcpPort().ToString(CultureInfo.InvariantCulture),
            "--gateway-port", HostProcess.FreeTcpPort().ToString(CultureInfo.InvariantCulture),
            "--advertise", "127.0.0.1", "--runners", "1", "--models", models.Root, "--http-port", httpPort.ToString(CultureInfo.InvariantCulture));
        return (node, httpPort);
    }

    private async Task<(WebApplication Host, string Url)> StartAsync(RedisServer redis, string name)
    {
        var url = $"http://127.0.0.1:{HostProcess.FreeTcpPort().ToString(CultureInfo.InvariantCulture)}";
        var host = FalHintsWebHost.Build(new Dictionary<string, string?>
        {
            ["FalHints:ModelStore:Root"] = models.Root,
            ["FalHints:ModelStore:FillOnStart"] = "false",
            ["FalHints:Cluster:Mode"] = "redis",
            ["FalHints:Cluster:RedisConnection"] = redis.ConnectionString,
            ["FalHints:Silo:Name"] = name,
            ["FalHints:Silo:AdvertisedAddress"] = "127.0.0.1",
            ["FalHints:Silo:SiloPort"] = HostProcess.FreeTcpPort().ToString(CultureInfo.InvariantCulture),
            ["FalHints:Silo:GatewayPort"] = HostProcess.FreeTcpPort().ToString(CultureInfo.InvariantCulture),
            ["FalHints:Gateway:Url"] = url,
            ["FalHints:Runners:CpuRunners"] = "1",
            ["FalHints:Runners:HeartbeatInterval"] = "00:00:01",
            ["FalHints:Runners:DrainTimeout"] = "00:00:01",
            ["FalHints:Router:ResumeInterval"] = "00:00:01",
            ["Logging:LogLevel:Default"] = "Warning",
        }, CancellationToken.None, silo => silo.AddFalApp<ReleasedApp>());
        await host.StartAsync();
        return (host, url);
    }

    private static Task<JsonElement> StatusAsync(HttpClient http, string node, string requestId, string status) =>
        Eventually.ValueAsync(async () =>
        {
            using var response = await http.GetAsync($"{node}/{ReleasedApp.Id}/requests/{requestId}/status");
            return response.IsSuccessStatusCode ? await response.Content.ReadFromJsonAsync<JsonElement>() : default;
        }, s => s.ValueKind == JsonValueKind.Object && s.GetProperty("status").GetString() == status, Patience, $"{requestId} {status}");
}
