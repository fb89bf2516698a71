using System.Collections.Concurrent;
using System.Text.Json;
using FalHints.Client.Contracts;
using FalHints.Client.Requests;
using FalHints.Runner.Apps;
using FalHints.Runner.Hosting;
using FalHints.Runner.Runners;
using FalHints.Tests.Runners;
using FalHints.Tests.Support;

namespace FalHints.Tests.Routing;

/// <summary>
/// One silo with one runner, whose reports (or dispatches) of chosen requests are lost; the router checks requests in
/// flight every second.
/// </summary>
public sealed class LostReportProfile : IClusterProfile
{
    public IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["FalHints:Runners:CpuRunners"] = "1",
        ["FalHints:Router:InFlightCheckInterval"] = "00:00:01",
        ["FalHints:Router:SweepInterval"] = "00:00:00.200",
        ["FalHints:Router:ResumeInterval"] = "00:00:00.500",
    };

    public void ConfigureSilo(ISiloBuilder silo) =>
        silo.AddFalApp<GatedLoadApp>().AddFalApp<SharedRunnerApp>().AddIncomingGrainCallFilter<LostReportFilter>();
}

/// <summary>Runs up to four requests at once on a runner, each waiting for its hold gate when it has one.</summary>
public sealed class SharedRunnerApp : FalApp<KeyInput, KeyOutput>
{
    public const string Id = "test/shared";

    public override string AppId => Id;

    public override FalAppSettings Settings { get; } = new(4, TimeSpan.FromMinutes(1));

    protected override async Task<KeyOutput> RunAsync(KeyInput input, CancellationToken cancellationToken)
    {
        if (input.Hold is { } hold)
        {
            await GatedLoadApp.Gate(hold).Task.WaitAsync(cancellationToken);
        }

        return new KeyOutput(input.Key, "shared");
    }
}

/// <summary>
/// Fails the first report of a finished request to its request grain, to its router, or both, as messages lost with a
/// silo that leaves while they are sent.
/// </summary>
public sealed class LostReportFilter : IIncomingGrainCallFilter
{
    /// <summary>Every try of a runner at one report (so the first attempt's reports are all lost, and a retry's arrive).</summary>
    public const int Always = RunnerGrain.ReportAttempts;

    private static readonly ConcurrentDictionary<(string RequestId, string Method), int> Targets = new();

    /// <summary>Fails the first dispatch of the request to a runner.</summary>
    public static void LoseFirstDispatch(string requestId) => Targets[(requestId, nameof(IRunnerGrain.DispatchAsync))] = 1;

    /// <summary>Fails the first <paramref name="toRequest"/> reports of the request to its grain and the first <paramref name="toRouter"/> to its router.</summary>
    public static void LoseFirst(string requestId, int toRequest, int toRouter)
    {
        Targets[(requestId, nameof(IRequestGrain.CompleteAsync))] = toRequest;
        Targets[(requestId, nameof(IRouterGrain.CompletedAsync))] = toRouter;
    }

    private static bool Drop(string requestId, string method)
    {
        var key = (requestId, method);
        while (Targets.TryGetValue(key, out var left) && left > 0)
        {
            if (Targets.TryUpdate(key, left - 1, left))
            {
                return true;
            }
        }

        return false;
    }

    public Task Invoke(IIncomingGrainCallContext context)
    {
        var requestId = context.MethodName switch
        {
            nameof(IRequestGrain.CompleteAsync) when context.Grain is IRequestGrain => context.TargetId.Key.ToString(),
            nameof(IRouterGrain.CompletedAsync) when context.Grain is IRouterGrain => context.Request.GetArgument(0) as string,
            nameof(IRunnerGrain.DispatchAsync) when context.Grain is IRunnerGrain => (context.Request.GetArgument(0) as RunnerInvocation)?.RequestId,
            _ => null,
        };
        return requestId is not null && Drop(requestId, context.MethodName)
            ? throw new TimeoutException($"Test: the report of {requestId} to {context.MethodName} was lost.")
            : context.Invoke();
    }
}

/// <summary>A runner finishes a request but its reports do not arrive: the router's check of in-flight requests repairs it.</summary>
public sealed class LostReportTests(FalHintsCluster<LostReportProfile> cluster) : IClassFixture<FalHintsCluster<LostReportProfile>>
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private async Task<FalRequestHandle> SubmitAsync(string requestId, string appId = GatedLoadApp.Id, string? hold = null)
    {
        var key = $"lost-report-{Guid.NewGuid():N}";
        GatedLoadApp.Gate(key).SetResult();
        var input = JsonSerializer.Serialize(new KeyInput(key, hold), FalJson.Options);
        await cluster.Cluster.Client.GetGrain<IRequestGrain>(requestId).SubmitAsync(new InferenceRequest(requestId, appId, input, key));
        return cluster.Client.GetRequest(requestId);
    }

    [Fact]
    public async Task A_dispatch_that_fails_takes_back_that_request_and_leaves_the_runners_others_running()
    {
        var hold = $"hold-{Guid.NewGuid():N}";
        var running = await SubmitAsync($"running-{Guid.NewGuid():N}", SharedRunnerApp.Id, hold);
        await Eventually.StatusAsync(running, s => s.State == RequestState.InProgress, Patience, "running");

        var requestId = $"lost-dispatch-{Guid.NewGuid():N}";
        LostReportFilter.LoseFirstDispatch(requestId);
        var retried = await SubmitAsync(requestId, SharedRunnerApp.Id);
        var result = await retried.GetResultAsync().WaitAsync(Patience);
        Assert.Null(result.Error);
        var retriedStatus = await retried.GetStatusAsync();
        Assert.Equal(2, retriedStatus.Attempts);
        Assert.Contains(retriedStatus.Logs, l => l.Message.Contains("could not be reached", StringComparison.Ordinal));

        // The request already running on that runner was neither taken back nor started again.
        GatedLoadApp.Gate(hold).SetResult();
        Assert.Null((await running.GetResultAsync().WaitAsync(Patience)).Error);
        var runningStatus = await running.GetStatusAsync();
        Assert.Equal(1, runningStatus.Attempts);
        Assert.DoesNotContain(runningStatus.Logs, l => l.Message.Contains("retrying", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_request_whose_runner_could_not_report_it_anywhere_is_retried_instead_of_waiting_forever()
    {
        var requestId = $"lost-both-{Guid.NewGuid():N}";
        LostReportFilter.LoseFirst(requestId, toRequest: LostReportFilter.Always, toRouter: LostReportFilter.Always);

        var handle = await SubmitAsync(requestId);
        var result = await handle.GetResultAsync().WaitAsync(Patience);

        Assert.Null(result.Error);
        var status = await handle.GetStatusAsync();
        Assert.Equal(2, status.Attempts);
        Assert.Contains(status.Logs, l => l.Message.Contains("no longer had the request; retrying", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_report_that_fails_once_is_sent_again_instead_of_the_request_running_twice()
    {
        var requestId = $"lost-once-{Guid.NewGuid():N}";
        LostReportFilter.LoseFirst(requestId, toRequest: 1, toRouter: 1);

        var handle = await SubmitAsync(requestId);
        var result = await handle.GetResultAsync().WaitAsync(Patience);

        Assert.Null(result.Error);
        var status = await handle.GetStatusAsync();
        Assert.Equal(1, status.Attempts);
        Assert.DoesNotContain(status.Logs, l => l.Message.Contains("retrying", StringComparison.Ordinal));
        var router = cluster.Cluster.Client.GetGrain<IRouterGrain>(GatedLoadApp.Id);
        await Eventually.ValueAsync(router.GetSnapshotAsync, s => s.InFlight == 0, Patience, "no request left in flight");
    }

    [Fact]
    public async Task A_runner_slot_held_by_a_completion_the_router_never_heard_of_is_freed()
    {
        var router = cluster.Cluster.Client.GetGrain<IRouterGrain>(GatedLoadApp.Id);
        var requestId = $"lost-router-{Guid.NewGuid():N}";
        LostReportFilter.LoseFirst(requestId, toRequest: 0, toRouter: LostReportFilter.Always);

        var handle = await SubmitAsync(requestId);
        var result = await handle.GetResultAsync().WaitAsync(Patience);
        Assert.Null(result.Error);
        Assert.Equal(1, (await handle.GetStatusAsync()).Attempts);

        // The router counted the request on its runner until its check found it gone.
        var snapshot = await Eventually.ValueAsync(router.GetSnapshotAsync, s => s.InFlight == 0, Patience, "no request left in flight");
        Assert.All(snapshot.Runners, r => Assert.Equal(0, r.InFlight));
    }
}
