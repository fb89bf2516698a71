using System.Text.Json;
using FalHints.Client.Apps;
using FalHints.Client.Contracts;
using FalHints.Client.Requests;
using FalHints.Tests.Support;

namespace FalHints.Tests.Routing;

public sealed class RouterClusterTests : IClassFixture<FalHintsCluster<DefaultProfile>>
{
    private readonly FalHintsCluster<DefaultProfile> _cluster;

    public RouterClusterTests(FalHintsCluster<DefaultProfile> cluster) => _cluster = cluster;

    private static string Input(string model, string prompt = "a lighthouse at dusk") =>
        JsonSerializer.Serialize(new AnyModelInput(model, prompt), FalJson.Options);

    [Fact]
    public async Task Hinted_request_returns_a_png()
    {
        var output = await _cluster.Client.RunAsync<AnyModelInput, AnyModelOutput>(
            AnyModel.AppId, new AnyModelInput("tiny/alpha", "a red fox"), hint: "tiny/alpha");

        Assert.Equal("image/png", output.Image.ContentType);
        var (width, height) = Png.AssertValid(output.Image.DecodeDataUrl());
        Assert.Equal((output.Image.Width, output.Image.Height), (width, height));
        Assert.Equal(output.Image.FileSize, output.Image.DecodeDataUrl().Length);
    }

    [Fact]
    public async Task Repeat_request_for_a_hint_goes_to_the_runner_that_loaded_it()
    {
        var client = _cluster.Client;

        var firstGamma = await client.SubmitAsync(AnyModel.AppId, Input("tiny/gamma"), "tiny/gamma");
        var firstDelta = await client.SubmitAsync(AnyModel.AppId, Input("tiny/delta"), "tiny/delta");
        var againGamma = await client.SubmitAsync(AnyModel.AppId, Input("tiny/gamma", "another prompt"), "tiny/gamma");
        var againDelta = await client.SubmitAsync(AnyModel.AppId, Input("tiny/delta", "another prompt"), "tiny/delta");

        Assert.All([firstGamma, firstDelta, againGamma, againDelta], r => Assert.Null(r.Error));
        Assert.Equal(firstGamma.RunnerId, againGamma.RunnerId);
        Assert.Equal(firstDelta.RunnerId, againDelta.RunnerId);
        Assert.True(againGamma.HintHit);
        Assert.True(againDelta.HintHit);

        var snapshot = await _cluster.Cluster.Client.GetGrain<IRouterGrain>(AnyModel.AppId).GetSnapshotAsync();
        Assert.Contains("tiny/gamma", snapshot.Runners.Single(r => r.RunnerId == firstGamma.RunnerId).Hints);
        Assert.Contains("tiny/delta", snapshot.Runners.Single(r => r.RunnerId == firstDelta.RunnerId).Hints);
    }

    [Fact]
    public async Task Unknown_model_fails_that_request_only_and_names_the_model()
    {
        var client = _cluster.Client;

        var missing = await client.SubmitAsync(AnyModel.AppId, Input("tiny/nope"), "tiny/nope");
        var escaping = await client.SubmitAsync(AnyModel.AppId, Input("../etc/passwd"), null);
        var fine = await client.SubmitAsync(AnyModel.AppId, Input("tiny/beta"), "tiny/beta");

        Assert.Equal(ErrorCodes.ModelNotFound, missing.Error!.Code);
        Assert.Contains("'tiny/nope'", missing.Error.Message, StringComparison.Ordinal);
        Assert.Equal(ErrorCodes.InvalidInput, escaping.Error!.Code);
        Assert.Null(fine.Error);
        Assert.NotNull(fine.OutputJson);
    }

    [Fact]
    public async Task Input_missing_a_field_is_an_invalid_input_error()
    {
        var result = await _cluster.Client.SubmitAsync(AnyModel.AppId, """{ "prompt": "no model" }""", null);

        Assert.Equal(ErrorCodes.InvalidInput, result.Error!.Code);
        Assert.Contains("model", result.Error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Typed_run_throws_an_exception_that_names_the_error()
    {
        var error = await Assert.ThrowsAsync<InvalidInputException>(() => _cluster.Client.RunAsync<AnyModelInput, AnyModelOutput>(
            AnyModel.AppId, new AnyModelInput("tiny/absent", "x"), hint: null));

        Assert.Equal(ErrorCodes.ModelNotFound, error.Error.Code);
    }

    [Fact]
    public async Task Malformed_app_id_and_input_are_refused_before_submission()
    {
        await Assert.ThrowsAsync<ArgumentException>(() => _cluster.Client.SubmitAsync("no-slash", Input("tiny/alpha"), null));
        await Assert.ThrowsAsync<ArgumentException>(() => _cluster.Client.SubmitAsync(AnyModel.AppId, "{ not json", null));
        await Assert.ThrowsAsync<ArgumentException>(() => _cluster.Client.SubmitAsync(AnyModel.AppId, "[1, 2]", null));
    }

    [Fact]
    public async Task App_that_no_runner_serves_fails_with_app_not_found()
    {
        var result = await _cluster.Client.SubmitAsync("nobody/serves-this", Input("tiny/alpha"), null);

        Assert.Equal(ErrorCodes.AppNotFound, result.Error!.Code);
        Assert.Contains("nobody/serves-this", result.Error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Request_without_hint_gets_affinity_from_the_apps_declared_hint_field()
    {
        var client = _cluster.Client;

        var first = await client.SubmitAsync(AnyModel.AppId, Input("tiny/beta", "no hint sent"), hint: null);
        var second = await client.SubmitAsync(AnyModel.AppId, Input("tiny/beta", "still no hint"), hint: null);

        Assert.Null(second.Error);
        Assert.Equal(first.RunnerId, second.RunnerId);
        Assert.True(second.HintHit);
    }

    [Fact]
    public async Task Prewarm_loads_a_model_ahead_of_traffic_so_the_first_request_hits()
    {
        var router = _cluster.Cluster.Client.GetGrain<IRouterGrain>(AnyModel.AppId);

        var warmed = await router.PrewarmAsync("tiny/prewarm", 1);
        var result = await _cluster.Client.SubmitAsync(AnyModel.AppId, Input("tiny/prewarm", "warm start"), "tiny/prewarm");

        var runner = Assert.Single(warmed);
        Assert.Equal(runner, result.RunnerId);
        Assert.True(result.HintHit);
    }

    [Fact]
    public async Task Prewarming_a_model_that_does_not_exist_warms_nothing()
    {
        var router = _cluster.Cluster.Client.GetGrain<IRouterGrain>(AnyModel.AppId);

        Assert.Empty(await router.PrewarmAsync("tiny/absent", 2));
    }
}
