using System.Text.Json;
using FalHints.Client.Contracts;
using FalHints.Router.Requests;
using FalHints.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Storage;

namespace FalHints.Tests.Requests;

/// <summary>What a request grain keeps and answers, called the way routers and runners call it, on a live silo.</summary>
public sealed class RequestGrainTests(FalHintsCluster<DefaultProfile> cluster) : IClassFixture<FalHintsCluster<DefaultProfile>>
{
    // No runner serves it: a request for it stays queued (until the discovery timeout) unless the test completes it.
    private const string NowhereApp = "tests/nowhere";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    private IGrainFactory Grains => cluster.Cluster.Client;

    private static InferenceRequest NewRequest(string inputJson = """{"prompt":"x"}""") =>
        new(Guid.NewGuid().ToString("N"), NowhereApp, inputJson, Hint: null);

    [Fact]
    public async Task A_result_that_arrives_before_its_start_notice_still_names_its_runner()
    {
        var request = NewRequest();
        var grain = Grains.GetGrain<IRequestGrain>(request.RequestId);
        await grain.SubmitAsync(request);

        // The runner's report overtakes the router's start notice, which then arrives late.
        await grain.CompleteAsync(new InferenceResult(request.RequestId, """{"ok":true}""", null, "silo-x/cpu:3", HintHit: true, Attempt: 1));
        await grain.StartedAsync("silo-x/cpu:3", hintHit: true, attempt: 1);

        var status = await grain.GetStatusAsync();
        Assert.Equal(RequestState.Completed, status.State);
        Assert.Equal("silo-x/cpu:3", status.RunnerId);
        Assert.True(status.HintHit);
        Assert.Equal(1, status.Attempts);
        Assert.Contains(status.Logs, l => l.Message.StartsWith("started on runner silo-x/cpu:3 (attempt 1, hint hit)", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_finished_request_keeps_its_result_but_not_its_input()
    {
        var prompt = new string('p', 1 << 20);
        var request = NewRequest(JsonSerializer.Serialize(new { prompt }));
        var grain = Grains.GetGrain<IRequestGrain>(request.RequestId);
        await grain.SubmitAsync(request);
        Assert.Contains(prompt, (await StoredAsync(request.RequestId)).Request!.InputJson, StringComparison.Ordinal);

        await grain.CompleteAsync(new InferenceResult(request.RequestId, """{"ok":true}""", null, "silo-x/cpu:0", HintHit: false, Attempt: 1));

        var stored = await StoredAsync(request.RequestId);
        Assert.Equal(RequestState.Completed, stored.State);
        Assert.Equal("""{"ok":true}""", stored.Result!.OutputJson);
        Assert.True(stored.Request!.InputJson.Length < 16, $"a finished request still stores {stored.Request.InputJson.Length} characters of input");
    }

    [Fact]
    public async Task Asking_for_unknown_ids_leaves_no_activations_behind()
    {
        var before = await RequestActivationsAsync();
        var ids = Enumerable.Range(0, 200).Select(_ => Guid.NewGuid().ToString("N")).ToList();
        foreach (var id in ids)
        {
            var status = await Grains.GetGrain<IRequestGrain>(id).GetStatusAsync();
            Assert.Equal(ErrorCodes.RequestNotFound, status.Result!.Error!.Code);
        }

        await Eventually.ValueAsync(RequestActivationsAsync, n => n <= before + 10, Patience, "unknown ids' activations gone");
    }

    private async Task<RequestRecord> StoredAsync(string requestId)
    {
        var storage = cluster.Cluster.Silos[0].ServiceProvider.GetRequiredKeyedService<IGrainStorage>(RequestStorage.Name);
        var state = new GrainState<RequestRecord>(new RequestRecord());
        var grainId = Grains.GetGrain<IRequestGrain>(requestId).GetGrainId();
        await storage.ReadStateAsync("request", grainId, state);
        return state.State!;
    }

    private async Task<int> RequestActivationsAsync()
    {
        var statistics = await Grains.GetGrain<IManagementGrain>(0).GetSimpleGrainStatistics();
        return statistics.Where(s => s.GrainType.Contains(nameof(RequestGrain), StringComparison.Ordinal)).Sum(s => s.ActivationCount);
    }
}
