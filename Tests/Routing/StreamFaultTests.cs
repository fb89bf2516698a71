using System.Text.Json;
using FalHints.Client.Apps;
using FalHints.Client.Contracts;
using FalHints.Client.Requests;
using FalHints.Tests.Support;

namespace FalHints.Tests.Routing;

/// <summary>
/// The default cluster, with a client that can publish on the hints stream itself, and heartbeats rare enough that a
/// runner's state in the router changes only through the events the test causes.
/// </summary>
public sealed class StreamPublisherProfile : IClusterProfile
{
    public IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["FalHints:Runners:HeartbeatInterval"] = "01:00:00",
        ["FalHints:Router:RunnerTimeout"] = "02:00:00",
    };

    public void ConfigureClient(IClientBuilder client) => client.AddMemoryStreams(HintStream.ProviderName);
}

/// <summary>
/// Duplicated and reordered events on the real hints stream: the router keeps each runner exactly as its newest event
/// says, and requests keep hitting the runner that holds their model.
/// </summary>
public sealed class StreamFaultTests : IClassFixture<FalHintsCluster<StreamPublisherProfile>>
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);
    private readonly FalHintsCluster<StreamPublisherProfile> _cluster;

    public StreamFaultTests(FalHintsCluster<StreamPublisherProfile> cluster) => _cluster = cluster;

    [Fact]
    public async Task Duplicated_and_stale_events_change_nothing_and_requests_still_hit()
    {
        var model = TinyModelStore.ModelIds[0];
        var router = _cluster.Cluster.Client.GetGrain<IRouterGrain>(AnyModel.AppId);
        var first = await _cluster.Client.SubmitAsync(AnyModel.AppId, Input(model, "first"), model).WaitAsync(Patience);
        Assert.Null(first.Error);
        var runnerId = first.RunnerId!;
        var runner = _cluster.Cluster.Client.GetGrain<IRunnerGrain>(runnerId);
        var current = (await runner.GetStatusAsync()).Apps.Single(a => a.AppId == AnyModel.AppId);
        Assert.Contains(model, current.Hints);

        var otherId = (await router.GetSnapshotAsync()).Runners.Single(r => r.RunnerId != runnerId).RunnerId;
        var other = (await _cluster.Cluster.Client.GetGrain<IRunnerGrain>(otherId).GetStatusAsync()).Apps.Single(a => a.AppId == AnyModel.AppId);

        // Replay the runner's own event (duplicates), an older copy claiming other models (reordered), a copy with the
        // same sequence but other contents, and a stale "started" event: none is newer than what the router applied.
        var stream = _cluster.Cluster.Client.GetStreamProvider(HintStream.ProviderName)
            .GetStream<HintsEvent>(StreamId.Create(HintStream.Namespace, AnyModel.AppId));
        await stream.OnNextAsync(current);
        await stream.OnNextAsync(current);
        await stream.OnNextAsync(current with { Sequence = current.Sequence - 1, Hints = ["tiny/beta", "tiny/gamma"] });
        await stream.OnNextAsync(current with { Hints = ["tiny/delta"] });
        await stream.OnNextAsync(current with { Sequence = 0, Hints = [], Kind = HintsEventKind.Started });

        // Then a newer event of the other runner, from the same producer on the same stream: once the router shows it,
        // it has processed everything published before it.
        await stream.OnNextAsync(other with { Sequence = other.Sequence + 1 });
        var after = await Eventually.ValueAsync(router.GetSnapshotAsync,
            s => s.Runners.Single(r => r.RunnerId == otherId).Sequence == other.Sequence + 1, Patience, "the marker event applied");
        var view = after.Runners.Single(r => r.RunnerId == runnerId);
        Assert.Equal(current.Sequence, view.Sequence);
        Assert.Equal<string>(current.Hints, view.Hints);
        Assert.Equal(2, after.Runners.Length);

        var again = await _cluster.Client.SubmitAsync(AnyModel.AppId, Input(model, "again"), model).WaitAsync(Patience);
        Assert.Null(again.Error);
        Assert.Equal(runnerId, again.RunnerId);
        Assert.True(again.HintHit);
    }

    private static string Input(string model, string prompt) => JsonSerializer.Serialize(new AnyModelInput(model, prompt), FalJson.Options);
}
