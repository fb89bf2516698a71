using System.Text.Json;
using FalHints.Client.Apps;
using FalHints.Client.Contracts;
using FalHints.Client.Requests;
using FalHints.Runner.Runners;
using FalHints.Tests.Support;

namespace FalHints.Tests.Runners;

public sealed class RunnerGrainTests : IClassFixture<FalHintsCluster<RunnerProfile>>
{
    private static readonly TimeSpan EventTimeout = TimeSpan.FromSeconds(20);
    private readonly FalHintsCluster<RunnerProfile> _cluster;

    public RunnerGrainTests(FalHintsCluster<RunnerProfile> cluster) => _cluster = cluster;

    private static string Json<T>(T value) => JsonSerializer.Serialize(value, FalJson.Options);

    [Fact]
    public async Task Each_runner_is_activated_on_the_silo_its_key_names()
    {
        foreach (var silo in _cluster.Cluster.Silos)
        {
            foreach (var device in new[] { "cpu:0", "cpu:1" })
            {
                var status = await _cluster.Cluster.Client.GetGrain<IRunnerGrain>($"{silo.Name}/{device}").GetStatusAsync();

                Assert.Equal(silo.Name, status.HostSilo);
                Assert.Equal($"{silo.Name}/{device}", status.RunnerId);
            }
        }
    }

    [Fact]
    public async Task Runner_of_a_silo_that_does_not_exist_is_never_activated_elsewhere()
    {
        var runner = _cluster.Cluster.Client.GetGrain<IRunnerGrain>("no-such-silo/cpu:0");

        var error = await Assert.ThrowsAnyAsync<Exception>(() => runner.GetStatusAsync().WaitAsync(TimeSpan.FromSeconds(30)));

        Assert.IsNotType<TimeoutException>(error);
        Assert.Contains("no-such-silo", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Hints_are_published_after_every_response_with_a_growing_sequence()
    {
        var log = await HintEventLog.SubscribeAsync(_cluster.Cluster.Client, AnyModel.AppId);
        var client = _cluster.Client;
        string Input(string model) => Json(new AnyModelInput(model, "stream test"));

        var results = new List<InferenceResult>();
        foreach (var model in new[] { "tiny/alpha", "tiny/beta", "tiny/missing", "tiny/alpha" })
        {
            results.Add(await client.SubmitAsync(AnyModel.AppId, Input(model), model));
        }

        foreach (var result in results)
        {
            var response = await log.WaitForAsync(e => e.RequestId == result.RequestId, EventTimeout, $"after request {result.RequestId}");
            Assert.Equal((HintsEventKind.Response, result.RunnerId), (response.Kind, response.RunnerId));
        }

        foreach (var perRunner in log.Events.GroupBy(e => e.RunnerId))
        {
            var sequences = perRunner.Select(e => e.Sequence).ToList();
            Assert.Equal(sequences.Order(), sequences);
            Assert.Equal(sequences.Count, sequences.Distinct().Count());
        }

        Assert.Equal(ErrorCodes.ModelNotFound, results[2].Error!.Code);
        var alphaRunner = results[3].RunnerId!;
        var last = await log.WaitForAsync(e => e.RunnerId == alphaRunner && e.Hints.Contains("tiny/alpha") && e.Cache.Loads > 0, EventTimeout, "holding tiny/alpha");
        Assert.Equal(alphaRunner.Split('/')[0], last.Silo);
        Assert.Equal(1, last.Capacity);
        Assert.True(last.Cache.BytesUsed > 0 && last.Cache.BudgetBytes > last.Cache.BytesUsed);
        await log.UnsubscribeAsync();
    }

    [Fact]
    public async Task A_pipeline_being_loaded_is_visible_as_loading_until_it_is_held()
    {
        var log = await HintEventLog.SubscribeAsync(_cluster.Cluster.Client, GatedLoadApp.Id);
        var gate = GatedLoadApp.Gate("slow-model");

        var request = _cluster.Client.RunAsync<KeyInput, KeyOutput>(GatedLoadApp.Id, new KeyInput("slow-model"), "slow-model");
        var loading = await log.WaitForAsync(e => e.Loading.Contains("slow-model"), EventTimeout, "loading slow-model");
        Assert.DoesNotContain("slow-model", loading.Hints);
        gate.SetResult();
        var output = await request;

        var held = await log.WaitForAsync(e => e.RunnerId == output.Runner && e.Hints.Contains("slow-model"), EventTimeout, "holding slow-model");
        Assert.Equal(loading.RunnerId, output.Runner);
        Assert.Empty(held.Loading);
        Assert.True(held.Sequence > loading.Sequence);
        await log.UnsubscribeAsync();
    }

    [Fact]
    public async Task A_status_answer_is_numbered_after_every_event_published_before_it()
    {
        // A router that heard a runner through an event that waited in the stream must take the runner's own answer
        // as newer: the answer holds a request that started after that event, which was not published.
        var log = await HintEventLog.SubscribeAsync(_cluster.Cluster.Client, GatedLoadApp.Id);
        var key = $"status-{Guid.NewGuid():N}";
        var hold = $"status-hold-{Guid.NewGuid():N}";
        GatedLoadApp.Gate(key).SetResult();
        var request = _cluster.Client.RunAsync<KeyInput, KeyOutput>(GatedLoadApp.Id, new KeyInput(key, hold), key);

        var (runner, first) = await HeldAsync();
        var second = App(await _cluster.Cluster.Client.GetGrain<IRunnerGrain>(runner).GetStatusAsync());
        GatedLoadApp.Gate(hold).SetResult();
        await request;
        var response = await log.WaitForAsync(e => e.RunnerId == runner && e.Sequence > second.Sequence, EventTimeout, "the response after the status answers");

        Assert.Equal(1, first.InFlight);
        Assert.True(second.Sequence > first.Sequence);
        Assert.DoesNotContain(log.Events, e => e.RunnerId == runner && (e.Sequence == first.Sequence || e.Sequence == second.Sequence));
        Assert.Equal(0, response.InFlight);
        await log.UnsubscribeAsync();

        async Task<(string Runner, HintsEvent App)> HeldAsync()
        {
            var deadline = DateTime.UtcNow + EventTimeout;
            while (true)
            {
                foreach (var silo in _cluster.Cluster.Silos)
                {
                    foreach (var device in new[] { "cpu:0", "cpu:1" })
                    {
                        var id = $"{silo.Name}/{device}";
                        if (App(await _cluster.Cluster.Client.GetGrain<IRunnerGrain>(id).GetStatusAsync()) is { InFlight: 1 } held)
                        {
                            return (id, held);
                        }
                    }
                }

                Assert.True(DateTime.UtcNow < deadline, "no runner took the held request within 20 s");
                await Task.Delay(20);
            }
        }

        static HintsEvent App(RunnerStatus status) => status.Apps.Single(a => a.AppId == GatedLoadApp.Id);
    }

    [Fact]
    public async Task Oversized_hint_lists_are_refused_and_truncated_deterministically()
    {
        var log = await HintEventLog.SubscribeAsync(_cluster.Cluster.Client, NoisyHintsApp.Id);

        await _cluster.Client.RunAsync<KeyInput, KeyOutput>(NoisyHintsApp.Id, new KeyInput("k"), null);

        var response = await log.WaitForAsync(e => e.Kind == HintsEventKind.Response, EventTimeout, "after the noisy response");
        Assert.Equal(Enumerable.Range(0, 64).Select(i => $"h{i:000}"), response.Hints);
        await log.UnsubscribeAsync();
    }

    [Fact]
    public async Task A_hint_as_long_as_callers_may_send_is_kept_by_its_runner_and_matched()
    {
        var hint = new string('m', FalHints.Client.Contracts.Hints.MaxLength);
        GatedLoadApp.Gate(hint).TrySetResult();
        var client = _cluster.Client;

        var first = await client.SubmitAsync(GatedLoadApp.Id, Json(new KeyInput(hint)), hint);
        var second = await client.SubmitAsync(GatedLoadApp.Id, Json(new KeyInput(hint)), hint);

        Assert.Null(first.Error);
        var held = await _cluster.Cluster.Client.GetGrain<IRunnerGrain>(first.RunnerId!).GetStatusAsync();
        Assert.Contains(hint, held.Apps.Single(a => a.AppId == GatedLoadApp.Id).Hints);
        Assert.Equal((first.RunnerId, true), (second.RunnerId, second.HintHit));
    }

    [Fact]
    public async Task App_failures_end_that_request_only_and_the_runner_keeps_serving()
    {
        var client = _cluster.Client;

        var thrown = await client.SubmitAsync(FaultyApp.Id, Json(new FaultInput("throw")), null);
        var hung = await client.SubmitAsync(FaultyApp.Id, Json(new FaultInput("hang")), null);
        var invalid = await client.SubmitAsync(FaultyApp.Id, Json(new FaultInput("bad-output")), null);
        var wrongEndpoint = await client.SubmitAsync(FaultyApp.Id, Json(new FaultInput("ok")), null, "/nope");
        var fine = await client.RunAsync<FaultInput, FaultOutput>(FaultyApp.Id, new FaultInput("ok"), null);

        Assert.Equal((ErrorCodes.AppError, "the app broke"), (thrown.Error!.Code, thrown.Error.Message[^"the app broke".Length..]));
        Assert.Equal(ErrorCodes.RequestTimeout, hung.Error!.Code);
        Assert.Equal(ErrorCodes.AppError, invalid.Error!.Code);
        Assert.Contains("cannot be serialized", invalid.Error.Message, StringComparison.Ordinal);
        Assert.Equal(ErrorCodes.EndpointNotFound, wrongEndpoint.Error!.Code);
        Assert.Equal(1, fine.Value);
    }

    [Fact]
    public async Task A_pipeline_lease_an_app_leaks_is_released_when_its_request_ends()
    {
        // Each leaked pipeline claims 60% of the runner's budget: were the first still pinned, the second could not load.
        var runner = _cluster.Cluster.Client.GetGrain<IRunnerGrain>($"{_cluster.Cluster.Silos[0].Name}/cpu:0");
        var bytes = RunnerOptions.DefaultCpuBudgetBytes / 10 * 6;
        foreach (var key in new[] { "leaked-a", "leaked-b" })
        {
            var response = await runner.InvokeAsync(new RunnerInvocation($"leak-{key}", FaultyApp.Id, Json(new FaultInput("leak", key, bytes))));
            Assert.Null(response.Error);
        }

        var app = (await runner.GetStatusAsync()).Apps.Single(a => a.AppId == FaultyApp.Id);
        Assert.Equal<string>(["leaked-b"], app.Hints);
        Assert.Equal(bytes, app.Cache.BytesUsed);
    }

    [Fact]
    public async Task Corrupt_weights_are_a_clear_error_and_leave_the_cache_clean()
    {
        var before = await RunnerStatesAsync();
        var result = await _cluster.Client.SubmitAsync(AnyModel.AppId, Json(new AnyModelInput(RunnerProfile.CorruptModel, "x")), RunnerProfile.CorruptModel);

        Assert.Equal(ErrorCodes.ModelCorrupt, result.Error!.Code);
        Assert.Contains($"'{RunnerProfile.CorruptModel}'", result.Error.Message, StringComparison.Ordinal);
        var status = await _cluster.Cluster.Client.GetGrain<IRunnerGrain>(result.RunnerId!).GetStatusAsync();
        var app = status.Apps.Single(a => a.AppId == AnyModel.AppId);
        Assert.DoesNotContain(RunnerProfile.CorruptModel, app.Hints);
        Assert.Empty(app.Loading);
        Assert.Equal(before[result.RunnerId!].Cache.BytesUsed, app.Cache.BytesUsed);
        Assert.Equal(before[result.RunnerId!].Cache.Loads, app.Cache.Loads);
    }

    [Fact]
    public async Task Header_claiming_two_billion_bytes_is_model_corrupt_not_an_allocation()
    {
        var model = RunnerProfile.HugeHeaderModel;
        var result = await _cluster.Client.SubmitAsync(AnyModel.AppId, Json(new AnyModelInput(model, "x")), model);

        Assert.Equal(ErrorCodes.ModelCorrupt, result.Error!.Code);
        Assert.Contains("the header length is 2000000000 bytes", result.Error.Message, StringComparison.Ordinal);
        var app = (await _cluster.Cluster.Client.GetGrain<IRunnerGrain>(result.RunnerId!).GetStatusAsync()).Apps.Single(a => a.AppId == AnyModel.AppId);
        Assert.DoesNotContain(model, app.Hints);
        Assert.Empty(app.Loading);
    }

    [Fact]
    public async Task Model_deleted_from_the_store_leaves_the_cache_and_the_hints_and_is_no_hit()
    {
        var model = RunnerProfile.DoomedModel;
        var loaded = await _cluster.Client.SubmitAsync(AnyModel.AppId, Json(new AnyModelInput(model, "x")), model);
        Assert.Null(loaded.Error);
        var runner = _cluster.Cluster.Client.GetGrain<IRunnerGrain>(loaded.RunnerId!);
        var holding = (await runner.GetStatusAsync()).Apps.Single(a => a.AppId == AnyModel.AppId);
        Assert.Contains(model, holding.Hints);

        Directory.Delete(Path.Combine(_cluster.Models.Root, model), recursive: true);
        var gone = await _cluster.Client.SubmitAsync(AnyModel.AppId, Json(new AnyModelInput(model, "x")), model);

        Assert.Equal(ErrorCodes.ModelNotFound, gone.Error!.Code);
        Assert.Equal(loaded.RunnerId, gone.RunnerId);
        Assert.False(gone.HintHit);
        var after = (await runner.GetStatusAsync()).Apps.Single(a => a.AppId == AnyModel.AppId);
        Assert.DoesNotContain(model, after.Hints);
        Assert.DoesNotContain(model, after.Warm.IsDefault ? [] : after.Warm);
        Assert.Equal(holding.Cache.Hits, after.Cache.Hits);
        Assert.True(after.Cache.BytesUsed < holding.Cache.BytesUsed, "the deleted model's memory is released");
    }

    [Fact]
    public async Task Model_deleted_from_the_store_leaves_the_hints_with_the_next_heartbeat_without_a_request()
    {
        var model = RunnerProfile.VanishingModel;
        var log = await HintEventLog.SubscribeAsync(_cluster.Cluster.Client, AnyModel.AppId);
        var loaded = await _cluster.Client.SubmitAsync(AnyModel.AppId, Json(new AnyModelInput(model, "x")), model);
        Assert.Null(loaded.Error);
        var held = await log.WaitForAsync(e => e.RunnerId == loaded.RunnerId && e.Hints.Contains(model), EventTimeout, $"holding {model}");

        Directory.Delete(Path.Combine(_cluster.Models.Root, model), recursive: true);

        var dropped = await log.WaitForAsync(e => e.RunnerId == loaded.RunnerId && e.Sequence > held.Sequence && !e.Hints.Contains(model),
            EventTimeout, $"no longer holding {model}");
        Assert.Equal(HintsEventKind.Heartbeat, dropped.Kind);
        await log.UnsubscribeAsync();
    }

    private async Task<Dictionary<string, HintsEvent>> RunnerStatesAsync()
    {
        var states = new Dictionary<string, HintsEvent>();
        foreach (var silo in _cluster.Cluster.Silos)
        {
            foreach (var device in new[] { "cpu:0", "cpu:1" })
            {
                var status = await _cluster.Cluster.Client.GetGrain<IRunnerGrain>($"{silo.Name}/{device}").GetStatusAsync();
                states[status.RunnerId] = status.Apps.Single(a => a.AppId == AnyModel.AppId);
            }
        }

        return states;
    }
}
