using System.Collections.Concurrent;
using System.Text.Json;
using FalHints.Client.Contracts;
using FalHints.Client.Requests;
using FalHints.Runner.Hosting;
using FalHints.Tests.Runners;
using FalHints.Tests.Support;

namespace FalHints.Tests.Routing;

/// <summary>One silo whose runners' first reports about chosen requests are lost; routers check in-flight requests every second.</summary>
public sealed class LostReportProfile : IClusterProfile
{
    public IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["FalHints:Router:InFlightCheckInterval"] = "00:00:01",
        ["FalHints:Router:SweepInterval"] = "00:00:00.200",
        ["FalHints:Router:ResumeInterval"] = "00:00:00.500",
    };

    public void ConfigureSilo(ISiloBuilder silo) => silo.AddFalApp<GatedLoadApp>().AddIncomingGrainCallFilter<LostReportFilter>();
}

/// <summary>
/// Fails the first report of a finished request to its request grain, to its router, or both, as messages lost with a
/// silo that leaves while they are sent.
/// </summary>
public sealed class LostReportFilter : IIncomingGrainCallFilter
{
    private static readonly ConcurrentDictionary<(string RequestId, string Method), bool> Targets = new();

    public static void LoseFirst(string requestId, bool toRequest, bool toRouter)
    {
        if (toRequest)
        {
            Targets[(requestId, nameof(IRequestGrain.CompleteAsync))] = true;
        }

        if (toRouter)
        {
            Targets[(requestId, nameof(IRouterGrain.CompletedAsync))] = true;
        }
    }

    public Task Invoke(IIncomingGrainCallContext context)
    {
        var requestId = context.MethodName switch
        {
            nameof(IRequestGrain.CompleteAsync) when context.Grain is IRequestGrain => context.TargetId.Key.ToString(),
            nameof(IRouterGrain.CompletedAsync) when context.Grain is IRouterGrain => context.Request.GetArgument(0) as string,
            _ => null,
        };
        return requestId is not null && Targets.TryRemove((requestId, context.MethodName), out _)
            ? throw new TimeoutException($"Test: the report of {requestId} to {context.MethodName} was lost.")
            : context.Invoke();
    }
}

/// <summary>A runner finishes a request but its reports do not arrive: the router's check of in-flight requests repairs it.</summary>
public sealed class LostReportTests(FalHintsCluster<LostReportProfile> cluster) : IClassFixture<FalHintsCluster<LostReportProfile>>
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private async Task<FalRequestHandle> SubmitAsync(string requestId)
    {
        var key = $"lost-report-{Guid.NewGuid():N}";
        GatedLoadApp.Gate(key).SetResult();
        var input = JsonSerializer.Serialize(new KeyInput(key), FalJson.Options);
        await cluster.Cluster.Client.GetGrain<IRequestGrain>(requestId).SubmitAsync(new InferenceRequest(requestId, GatedLoadApp.Id, input, key));
        return cluster.Client.GetRequest(requestId);
    }

    [Fact]
    public async Task A_request_whose_runner_could_not_report_it_anywhere_is_retried_instead_of_waiting_forever()
    {
        var requestId = $"lost-both-{Guid.NewGuid():N}";
        LostReportFilter.LoseFirst(requestId, toRequest: true, toRouter: true);

        var handle = await SubmitAsync(requestId);
        var result = await handle.GetResultAsync().WaitAsync(Patience);

        Assert.Null(result.Error);
        var status = await handle.GetStatusAsync();
        Assert.Equal(2, status.Attempts);
        Assert.Contains(status.Logs, l => l.Message.Contains("no longer had the request; retrying", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_runner_slot_held_by_a_completion_the_router_never_heard_of_is_freed()
    {
        var router = cluster.Cluster.Client.GetGrain<IRouterGrain>(GatedLoadApp.Id);
        var requestId = $"lost-router-{Guid.NewGuid():N}";
        LostReportFilter.LoseFirst(requestId, toRequest: false, toRouter: true);

        var handle = await SubmitAsync(requestId);
        var result = await handle.GetResultAsync().WaitAsync(Patience);
        Assert.Null(result.Error);
        Assert.Equal(1, (await handle.GetStatusAsync()).Attempts);

        // The router counted the request on its runner until its check found it gone.
        var snapshot = await Eventually.ValueAsync(router.GetSnapshotAsync, s => s.InFlight == 0, Patience, "no request left in flight");
        Assert.All(snapshot.Runners, r => Assert.Equal(0, r.InFlight));
    }
}
