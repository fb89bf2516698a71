using FalHints.Client.Apps;
using FalHints.Client.Contracts;
using FalHints.Client.Requests;
using FalHints.Runner.Hosting;
using FalHints.Tests.Runners;
using FalHints.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace FalHints.Tests.Requests;

/// <summary>One silo with one runner, so the test decides what queues; a short queue and discovery timeout.</summary>
public sealed class SdkProfile : IClusterProfile
{
    public IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["FalHints:Runners:CpuRunners"] = "1",
        ["FalHints:Router:MaxQueueLength"] = "2",
        ["FalHints:Router:DiscoveryTimeout"] = "00:00:02",
        ["FalHints:Router:SweepInterval"] = "00:00:00.200",
    };

    public void ConfigureSilo(ISiloBuilder silo) => silo.AddFalApp<GatedLoadApp>();
}

/// <summary>Every verb of the client SDK and every typed failure, against an in-process cluster.</summary>
public sealed class ClientSdkTests(FalHintsCluster<SdkProfile> cluster) : IClassFixture<FalHintsCluster<SdkProfile>>
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private FalHintsClient Client => cluster.Client;

    private static string NewKey() => $"sdk-{Guid.NewGuid():N}";

    /// <summary>Occupies the only runner until the returned gate opens.</summary>
    private async Task<(FalRequestHandle Busy, TaskCompletionSource Hold)> OccupyAsync()
    {
        var key = NewKey();
        var hold = NewKey();
        GatedLoadApp.Gate(key).SetResult();
        var busy = await Client.EnqueueInputAsync(GatedLoadApp.Id, new KeyInput(key, hold), key);
        await Eventually.StatusAsync(busy, s => s.State == RequestState.InProgress, Patience, "running");
        return (busy, GatedLoadApp.Gate(hold));
    }

    private static KeyInput Quick()
    {
        var key = NewKey();
        GatedLoadApp.Gate(key).SetResult();
        return new KeyInput(key);
    }

    [Fact]
    public async Task Enqueue_returns_a_handle_whose_status_stream_goes_queued_in_progress_completed()
    {
        var (busy, hold) = await OccupyAsync();
        var input = Quick() with { Hold = NewKey() };
        var handle = await Client.EnqueueInputAsync(GatedLoadApp.Id, input, input.Key);
        Assert.Equal((RequestState.Queued, 0), (handle.Submitted!.State, handle.Submitted.QueuePosition));

        var seen = new List<RequestStatus>();
        var streaming = Task.Run(async () =>
        {
            await foreach (var status in handle.StreamStatusAsync())
            {
                lock (seen)
                {
                    seen.Add(status);
                }
            }
        });
        await Eventually.ValueAsync(() => Task.FromResult(seen.Count), n => n >= 1, Patience, "queued");
        hold.SetResult();
        await Eventually.ValueAsync(() => Task.FromResult(seen.Count), n => n >= 2, Patience, "in progress");
        GatedLoadApp.Gate(input.Hold!).SetResult();
        await streaming.WaitAsync(Patience);

        Assert.Equal([RequestState.Queued, RequestState.InProgress, RequestState.Completed], seen.Select(s => s.State));
        Assert.Equal(0, seen[0].QueuePosition);
        Assert.Equal(input.Key, (await handle.GetResultAsync<KeyOutput>()).Key);
        await busy.GetResultAsync().WaitAsync(Patience);
    }

    [Fact]
    public async Task Subscribe_calls_back_on_queue_updates_and_returns_the_typed_output()
    {
        var (busy, hold) = await OccupyAsync();
        var updates = new List<RequestStatus>();
        var input = Quick();

        var subscribing = Client.SubscribeAsync<KeyInput, KeyOutput>(GatedLoadApp.Id, input, input.Key, updates.Add);
        await Eventually.ValueAsync(() => Task.FromResult(updates.Count), n => n >= 1, Patience, "a queue update");
        hold.SetResult();
        var output = await subscribing.WaitAsync(Patience);

        Assert.Equal(input.Key, output.Key);
        Assert.Equal(RequestState.Queued, updates[0].State);
        Assert.Equal(RequestState.Completed, updates[^1].State);
        await busy.GetResultAsync().WaitAsync(Patience);
    }

    [Fact]
    public async Task Run_returns_the_typed_output_in_one_call()
    {
        var output = await Client.RunAsync<AnyModelInput, AnyModelOutput>(AnyModel.AppId, new AnyModelInput("tiny/gamma", "one call"), "tiny/gamma");

        Assert.Equal((128, 128), Png.AssertValid(output.Image.DecodeDataUrl()));
    }

    [Fact]
    public async Task Status_with_logs_and_a_handle_found_again_by_id()
    {
        var input = Quick();
        var handle = await Client.EnqueueInputAsync(GatedLoadApp.Id, input, input.Key);
        await handle.GetResultAsync().WaitAsync(Patience);

        var again = await Client.GetRequest(handle.RequestId).GetStatusAsync();

        Assert.Equal(RequestState.Completed, again.State);
        Assert.Contains(again.Logs, l => l.Message == "completed");
        Assert.Equal(1, again.Attempts);
    }

    [Fact]
    public async Task Cancel_ends_the_request_with_a_cancelled_exception()
    {
        var (busy, hold) = await OccupyAsync();
        var input = Quick();
        var handle = await Client.EnqueueInputAsync(GatedLoadApp.Id, input, input.Key);

        await handle.CancelAsync();

        var error = await Assert.ThrowsAsync<RequestCancelledException>(() => handle.GetResultAsync<KeyOutput>());
        Assert.Equal(handle.RequestId, error.RequestId);
        hold.SetResult();
        await busy.GetResultAsync().WaitAsync(Patience);
    }

    [Fact]
    public async Task Start_timeout_is_a_start_timeout_exception()
    {
        var (busy, hold) = await OccupyAsync();

        var handle = await Client.EnqueueInputAsync(GatedLoadApp.Id, Quick(), null, new SubmitOptions(StartTimeout: TimeSpan.FromMilliseconds(300)));

        await Assert.ThrowsAsync<StartTimeoutException>(() => handle.GetResultAsync<KeyOutput>().WaitAsync(Patience));
        hold.SetResult();
        await busy.GetResultAsync().WaitAsync(Patience);
    }

    [Fact]
    public async Task A_full_queue_is_a_queue_full_exception()
    {
        var (busy, hold) = await OccupyAsync();
        var queued = new[] { await Client.EnqueueInputAsync(GatedLoadApp.Id, Quick(), null), await Client.EnqueueInputAsync(GatedLoadApp.Id, Quick(), null) };

        await Assert.ThrowsAsync<QueueFullException>(() => Client.RunAsync<KeyInput, KeyOutput>(GatedLoadApp.Id, Quick(), null));
        hold.SetResult();
        await Task.WhenAll(queued.Append(busy).Select(h => h.GetResultAsync().WaitAsync(Patience)));
    }

    [Fact]
    public async Task Invalid_input_and_unknown_models_are_invalid_input_exceptions()
    {
        await Assert.ThrowsAsync<InvalidInputException>(() => Client.RunAsync<object, AnyModelOutput>(AnyModel.AppId, new { prompt = "no model" }, null));
        var missing = await Assert.ThrowsAsync<InvalidInputException>(() => Client.RunAsync<AnyModelInput, AnyModelOutput>(AnyModel.AppId, new AnyModelInput("tiny/none", "x"), null));
        Assert.Equal(ErrorCodes.ModelNotFound, missing.Error.Code);
    }

    [Fact]
    public async Task An_app_no_runner_serves_is_an_app_not_found_exception()
    {
        var error = await Assert.ThrowsAsync<AppNotFoundException>(() => Client.RunAsync<KeyInput, KeyOutput>("nobody/here", new KeyInput("k"), null));

        Assert.Contains("nobody/here", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Enqueue_for_an_app_no_silo_serves_is_refused_at_once_without_a_router_or_request()
    {
        const string app = "nobody/enqueued";

        var error = await Assert.ThrowsAsync<AppNotFoundException>(() => Client.EnqueueInputAsync(app, new KeyInput("k"), null));

        Assert.Equal(ErrorCodes.AppNotFound, error.Error.Code);
        var management = cluster.Cluster.Client.GetGrain<IManagementGrain>(0);
        var grains = await management.GetDetailedGrainStatistics();
        Assert.DoesNotContain(grains, g => g.GrainId.Key.ToString() == app);
        Assert.Equal(ErrorCodes.RequestNotFound, (await Client.GetRequest(error.RequestId).GetStatusAsync()).Result!.Error!.Code);
    }

    [Fact]
    public void Runner_failures_map_to_a_runner_failed_exception_and_unknown_codes_to_the_base_type()
    {
        Assert.IsType<RunnerFailedException>(FalRequestException.From("r", new RequestError(ErrorCodes.RunnerFailed, "lost")));
        Assert.IsType<FalRequestException>(FalRequestException.From("r", new RequestError(ErrorCodes.AppError, "boom")));
    }

    [Fact]
    public void The_client_registers_for_dependency_injection()
    {
        var services = new ServiceCollection().AddSingleton<IGrainFactory>(cluster.Cluster.Client).AddFalHintsClient();

        using var provider = services.BuildServiceProvider();

        Assert.NotNull(provider.GetRequiredService<FalHintsClient>());
    }
}
