using System.Collections.Concurrent;
using System.Globalization;
using FalHints.Client.Contracts;
using FalHints.Client.Requests;
using FalHints.Host.Hosting;
using FalHints.Runner.Apps;
using FalHints.Runner.Hosting;
using FalHints.Tests.Runners;
using FalHints.Tests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace FalHints.Tests.Cluster;

/// <summary>Records the requests it serves; while <see cref="Holding"/>, each waits until the node stops.</summary>
public sealed class RestartRecordingApp : FalApp<KeyInput, KeyOutput>
{
    public const string Id = "test/restart-recording";

    private static volatile bool _holding = true;

    public static bool Holding
    {
        get => _holding;
        set => _holding = value;
    }

    public static ConcurrentDictionary<string, bool> Served { get; } = new();

    public override string AppId => Id;

    protected override async Task<KeyOutput> RunAsync(KeyInput input, CancellationToken cancellationToken)
    {
        if (Holding)
        {
            await Task.Delay(Timeout.Infinite, cancellationToken);
        }

        Served[input.Key] = true;
        return new KeyOutput(input.Key, "recorded");
    }
}

/// <summary>A whole node on a real Redis, stopped at once and started again, as after a whole-cluster restart.</summary>
public sealed class RedisRestartTests(TinyModelStore models) : IClassFixture<TinyModelStore>
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task After_a_whole_cluster_restart_every_unfinished_request_resumes_without_being_asked_for()
    {
        using var redis = await RedisServer.StartAsync();
        var settings = new Dictionary<string, string?>
        {
            ["FalHints:ModelStore:Root"] = models.Root,
            ["FalHints:ModelStore:FillOnStart"] = "false",
            ["FalHints:Cluster:Mode"] = "redis",
            ["FalHints:Cluster:RedisConnection"] = redis.ConnectionString,
            ["FalHints:Silo:Name"] = "restart-node",
            ["FalHints:Silo:AdvertisedAddress"] = "127.0.0.1",
            ["FalHints:Silo:SiloPort"] = HostProcess.FreeTcpPort().ToString(CultureInfo.InvariantCulture),
            ["FalHints:Silo:GatewayPort"] = HostProcess.FreeTcpPort().ToString(CultureInfo.InvariantCulture),
            ["FalHints:Gateway:Url"] = $"http://127.0.0.1:{HostProcess.FreeTcpPort().ToString(CultureInfo.InvariantCulture)}",
            ["FalHints:Runners:CpuRunners"] = "1",
            ["FalHints:Runners:HeartbeatInterval"] = "00:00:01",
            ["Logging:LogLevel:Default"] = "Warning",
        };

        // One runner: the first request runs (and holds), the others queue behind it.
        RestartRecordingApp.Holding = true;
        var keys = Enumerable.Range(0, 4).Select(i => $"restart-{i}-{Guid.NewGuid():N}").ToList();
        var first = await StartAsync(settings);
        var client = new FalHintsClient(first.Services.GetRequiredService<IGrainFactory>());
        var ids = new List<string>();
        foreach (var key in keys)
        {
            ids.Add((await client.EnqueueInputAsync(RestartRecordingApp.Id, new KeyInput(key), null)).RequestId);
        }

        await Eventually.StatusAsync(client.GetRequest(ids[0]), s => s.State == RequestState.InProgress, Patience, "the first running");
        await first.StopAsync(new CancellationToken(canceled: true));
        await first.DisposeAsync();

        // Nobody asks for the requests: the restarted node finds them in the store's index and runs them.
        RestartRecordingApp.Holding = false;
        var second = await StartAsync(settings);
        try
        {
            await Eventually.ValueAsync(() => Task.FromResult(keys.Count(RestartRecordingApp.Served.ContainsKey)), n => n == keys.Count, Patience, "every request served");

            var after = new FalHintsClient(second.Services.GetRequiredService<IGrainFactory>());
            foreach (var id in ids)
            {
                var status = await after.GetRequest(id).WaitForCompletionAsync().WaitAsync(Patience);
                Assert.Null(status.Result!.Error);
            }
        }
        finally
        {
            await second.StopAsync();
            await second.DisposeAsync();
        }
    }

    private static async Task<WebApplication> StartAsync(Dictionary<string, string?> settings)
    {
        var host = FalHintsWebHost.Build(settings, CancellationToken.None, silo => silo.AddFalApp<RestartRecordingApp>());
        await host.StartAsync();
        return host;
    }
}
