using System.Text.Json;
using FalHints.Client.Contracts;
using FalHints.Client.Requests;
using FalHints.Runner.Hosting;
using FalHints.Tests.Runners;
using FalHints.Tests.Support;

namespace FalHints.Tests.Routing;

/// <summary>One silo, two runners, a short queue and fast resumes, with the gated test app.</summary>
public sealed class LifecycleProfile : IClusterProfile
{
    public IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["FalHints:Router:MaxQueueLength"] = "3",
        ["FalHints:Router:ResumeInterval"] = "00:00:00.500",
        ["FalHints:Router:SweepInterval"] = "00:00:00.200",
    };

    public void ConfigureSilo(ISiloBuilder silo) => silo.AddFalApp<GatedLoadApp>();
}

/// <summary>Queueing, positions, cancel, start timeout, queue limits and router restarts on a live cluster.</summary>
public sealed class LifecycleTests : IClassFixture<FalHintsCluster<LifecycleProfile>>
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);
    private readonly FalHintsCluster<LifecycleProfile> _cluster;

    public LifecycleTests(FalHintsCluster<LifecycleProfile> cluster) => _cluster = cluster;

    private static string Input(string key, string? hold = null) => JsonSerializer.Serialize(new KeyInput(key, hold), FalJson.Options);

    private static string NewKey(string prefix) => $"{prefix}-{Guid.NewGuid():N}";

    /// <summary>Occupies both runners with requests that wait for their hold gates; returns the gates.</summary>
    private async Task<(FalRequestHandle[] Handles, TaskCompletionSource[] Holds)> OccupyRunnersAsync()
    {
        var handles = new List<FalRequestHandle>();
        var holds = new List<TaskCompletionSource>();
        for (var i = 0; i < 2; i++)
        {
            var key = NewKey("busy");
            var hold = NewKey("hold");
            GatedLoadApp.Gate(key).SetResult();
            holds.Add(GatedLoadApp.Gate(hold));
            handles.Add(await _cluster.Client.EnqueueAsync(GatedLoadApp.Id, Input(key, hold), key));
        }

        foreach (var handle in handles)
        {
            await Eventually.StatusAsync(handle, s => s.State == RequestState.InProgress, Patience, "running");
        }

        return ([.. handles], [.. holds]);
    }

    private static async Task<FalRequestHandle> QueueOneAsync(FalHintsClient client, SubmitOptions? options = null)
    {
        var key = NewKey("queued");
        GatedLoadApp.Gate(key).SetResult();
        return await client.EnqueueAsync(GatedLoadApp.Id, Input(key), key, "/", options);
    }

    [Fact]
    public async Task Requests_wait_in_order_with_their_position_and_start_when_runners_free()
    {
        var (busy, holds) = await OccupyRunnersAsync();
        var first = await QueueOneAsync(_cluster.Client);
        var second = await QueueOneAsync(_cluster.Client);

        var firstStatus = await first.GetStatusAsync();
        var secondStatus = await second.GetStatusAsync();
        Assert.Equal((RequestState.Queued, 0), (firstStatus.State, firstStatus.QueuePosition));
        Assert.Equal((RequestState.Queued, 1), (secondStatus.State, secondStatus.QueuePosition));

        Array.ForEach(holds, h => h.SetResult());
        foreach (var handle in busy.Concat([first, second]))
        {
            var result = await handle.GetResultAsync().WaitAsync(Patience);
            Assert.Null(result.Error);
        }

        var done = await second.GetStatusAsync();
        Assert.Equal(RequestState.Completed, done.State);
        Assert.Contains(done.Logs, l => l.Message.StartsWith("started on runner", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Low_priority_requests_start_after_normal_ones()
    {
        var (busy, holds) = await OccupyRunnersAsync();
        var low = await QueueOneAsync(_cluster.Client, new SubmitOptions(RequestPriority.Low));
        var normal = await QueueOneAsync(_cluster.Client);

        Assert.Equal(1, (await low.GetStatusAsync()).QueuePosition);
        Assert.Equal(0, (await normal.GetStatusAsync()).QueuePosition);
        Array.ForEach(holds, h => h.SetResult());
        await Task.WhenAll(busy.Concat([low, normal]).Select(h => h.GetResultAsync().WaitAsync(Patience)));
    }

    [Fact]
    public async Task Cancelling_a_queued_request_removes_it_from_the_queue()
    {
        var (busy, holds) = await OccupyRunnersAsync();
        var doomed = await QueueOneAsync(_cluster.Client);
        var behind = await QueueOneAsync(_cluster.Client);

        await doomed.CancelAsync();

        var result = await doomed.GetResultAsync().WaitAsync(Patience);
        Assert.Equal(ErrorCodes.Cancelled, result.Error!.Code);
        Assert.Equal(0, (await behind.GetStatusAsync()).QueuePosition);
        Array.ForEach(holds, h => h.SetResult());
        await Task.WhenAll(busy.Concat([behind]).Select(h => h.GetResultAsync().WaitAsync(Patience)));
    }

    [Fact]
    public async Task Cancelling_a_running_request_signals_its_cancellation_token()
    {
        var key = NewKey("cancel");
        GatedLoadApp.Gate(key).SetResult();
        var running = await _cluster.Client.EnqueueAsync(GatedLoadApp.Id, Input(key, NewKey("never-opened")), key);
        await Eventually.StatusAsync(running, s => s.State == RequestState.InProgress, Patience, "running");

        await running.CancelAsync();

        var result = await running.GetResultAsync().WaitAsync(Patience);
        Assert.Equal(ErrorCodes.Cancelled, result.Error!.Code);
        Assert.Contains("while running", result.Error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Request_not_started_within_its_start_timeout_fails_with_a_timeout_error()
    {
        var (busy, holds) = await OccupyRunnersAsync();

        var late = await QueueOneAsync(_cluster.Client, new SubmitOptions(StartTimeout: TimeSpan.FromMilliseconds(300)));

        var result = await late.GetResultAsync().WaitAsync(Patience);
        Assert.Equal(ErrorCodes.StartTimeout, result.Error!.Code);
        Array.ForEach(holds, h => h.SetResult());
        await Task.WhenAll(busy.Select(h => h.GetResultAsync().WaitAsync(Patience)));
    }

    [Fact]
    public async Task A_full_queue_refuses_new_requests_with_a_clear_error()
    {
        var (busy, holds) = await OccupyRunnersAsync();
        var queued = new List<FalRequestHandle>();
        for (var i = 0; i < 3; i++)
        {
            queued.Add(await QueueOneAsync(_cluster.Client));
        }

        var refused = await QueueOneAsync(_cluster.Client);

        var result = await refused.GetResultAsync().WaitAsync(Patience);
        Assert.Equal(ErrorCodes.QueueFull, result.Error!.Code);
        Assert.Contains("3 requests waiting", result.Error.Message, StringComparison.Ordinal);
        Array.ForEach(holds, h => h.SetResult());
        await Task.WhenAll(busy.Concat(queued).Select(h => h.GetResultAsync().WaitAsync(Patience)));
    }

    [Fact]
    public async Task A_router_that_restarts_loses_no_accepted_request()
    {
        var (busy, holds) = await OccupyRunnersAsync();
        var queued = new[] { await QueueOneAsync(_cluster.Client), await QueueOneAsync(_cluster.Client) };
        var router = _cluster.Cluster.Client.GetGrain<IRouterGrain>(GatedLoadApp.Id);

        await _cluster.Cluster.DeactivateAsync(router);
        var rebuilt = await Eventually.ValueAsync(router.GetSnapshotAsync, s => s.Runners.Length == 2 && s.Queued == 2 && s.InFlight == 2, Patience, "the router rebuilt");
        Array.ForEach(holds, h => h.SetResult());

        foreach (var handle in busy.Concat(queued))
        {
            var result = await handle.GetResultAsync().WaitAsync(Patience);
            Assert.Null(result.Error);
        }

        Assert.Equal(2, rebuilt.Queued);
    }

    [Fact]
    public async Task A_late_notice_of_a_lost_runner_is_logged_without_undoing_the_newer_start()
    {
        var (busy, holds) = await OccupyRunnersAsync();
        var queued = await QueueOneAsync(_cluster.Client);
        var grain = _cluster.Cluster.Client.GetGrain<IRequestGrain>(queued.RequestId);

        // The router restarted the request on a second runner before the notice about the first arrived.
        await grain.StartedAsync("gone/cpu:0", hintHit: true, attempt: 1);
        await grain.StartedAsync("other/cpu:0", hintHit: false, attempt: 2);
        await grain.RequeuedAsync("gone/cpu:0", 1, "Runner gone/cpu:0 was lost (test); retrying (attempt 1 of 3 failed).");

        // The same runner, retried there: the late notice of attempt 2 must not undo attempt 3.
        await grain.StartedAsync("other/cpu:0", hintHit: true, attempt: 3);
        await grain.RequeuedAsync("other/cpu:0", 2, "Runner other/cpu:0 no longer had the request (test); retrying (attempt 2 of 3 failed).");

        var status = await queued.GetStatusAsync();
        Assert.Equal(RequestState.InProgress, status.State);
        Assert.Equal("other/cpu:0", status.RunnerId);
        Assert.Contains(status.Logs, l => l.Message.Contains("gone/cpu:0 was lost", StringComparison.Ordinal));

        Array.ForEach(holds, h => h.SetResult());
        await Task.WhenAll(busy.Append(queued).Select(h => h.GetResultAsync().WaitAsync(Patience)));
    }

    [Fact]
    public async Task A_request_cancelled_as_soon_as_it_is_submitted_ends_cancelled()
    {
        var key = NewKey("instant-cancel");
        GatedLoadApp.Gate(key).SetResult();

        var handle = await _cluster.Client.EnqueueAsync(GatedLoadApp.Id, Input(key, NewKey("never-opened")), key);
        await handle.CancelAsync();

        var result = await handle.GetResultAsync().WaitAsync(Patience);
        Assert.Equal(ErrorCodes.Cancelled, result.Error!.Code);
    }

    [Fact]
    public async Task Unknown_request_id_reports_request_not_found()
    {
        var status = await _cluster.Client.GetRequest("no-such-request").GetStatusAsync();

        Assert.Equal(ErrorCodes.RequestNotFound, status.Result!.Error!.Code);
    }
}
