using System.Collections.Concurrent;
using FalHints.Client.Contracts;
using FalHints.Host.Hosting;
using FalHints.Router.Requests;
using FalHints.Tests.Support;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Storage;

namespace FalHints.Tests.Requests;

/// <summary>What a request grain writes to its store, and when, against a store that records every write and fails the ones a test asks it to.</summary>
public sealed class RequestWriteTests(FalHintsCluster<RequestWriteTests.FailingStoreProfile> cluster)
    : IClassFixture<FalHintsCluster<RequestWriteTests.FailingStoreProfile>>
{
    // No runner serves it: a request for it stays queued unless the test completes it, as a runner would.
    private const string NowhereApp = "tests/nowhere";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    private static InferenceRequest NewRequest(SubmitOptions? options = null) =>
        new(Guid.NewGuid().ToString("N"), NowhereApp, """{"prompt":"x"}""", Hint: null, Options: options);

    private static InferenceResult Result(InferenceRequest request) =>
        new(request.RequestId, """{"ok":true}""", null, "silo-x/cpu:0", HintHit: false, Attempt: 1);

    private IRequestGrain Grain(InferenceRequest request) => cluster.Cluster.Client.GetGrain<IRequestGrain>(request.RequestId);

    private static Task<RequestState> ReachesAsync(IRequestGrain grain, RequestState state, string what) =>
        Eventually.ValueAsync(async () => (await grain.GetStatusAsync()).State, s => s == state, Patience, what);

    [Fact]
    public async Task A_request_that_completes_within_its_submit_and_wait_call_is_written_once_with_its_outcome()
    {
        var request = NewRequest();
        var call = Grain(request).SubmitAndWaitAsync(request, Patience);
        await ReachesAsync(Grain(request), RequestState.Queued, "the request queued");
        await Grain(request).CompleteAsync(Result(request));

        Assert.Equal(RequestState.Completed, (await call).State);
        Assert.Equal([RequestState.Completed], FailingStore.WritesOf(request.RequestId));
        Assert.Equal(RequestState.Completed, (await StoredAsync(request.RequestId)).State);
    }

    [Fact]
    public async Task A_submit_and_wait_call_whose_write_fails_answers_the_failure_and_the_request_is_taken_back()
    {
        var request = NewRequest();
        FailingStore.FailUnfinishedWrites[request.RequestId] = true;

        var failed = await Assert.ThrowsAnyAsync<Exception>(() => Grain(request).SubmitAndWaitAsync(request, TimeSpan.FromMilliseconds(300)));

        Assert.Contains(FailingStore.Failure, failed.ToString(), StringComparison.Ordinal);
        Assert.Null(await cluster.Cluster.Client.GetGrain<IRouterGrain>(NowhereApp).GetPositionAsync(request.RequestId));
        Assert.Equal(ErrorCodes.RequestNotFound, (await Grain(request).GetStatusAsync()).Result?.Error?.Code);
    }

    [Fact]
    public async Task A_submit_and_wait_call_that_answers_before_its_request_ends_stores_it_first()
    {
        var request = NewRequest();

        var status = await Grain(request).SubmitAndWaitAsync(request, TimeSpan.FromMilliseconds(300));

        Assert.Equal(RequestState.Queued, status.State);
        Assert.Equal([RequestState.Queued], FailingStore.WritesOf(request.RequestId));
        Assert.Equal(RequestState.Queued, (await StoredAsync(request.RequestId)).State);
    }

    [Fact]
    public async Task A_request_with_a_webhook_or_submitted_without_waiting_is_stored_when_it_is_accepted()
    {
        var hooked = NewRequest(new SubmitOptions(Webhook: new WebhookTarget("http://127.0.0.1:9/hook", "http://127.0.0.1:8080")));
        var call = Grain(hooked).SubmitAndWaitAsync(hooked, Patience);
        var plain = NewRequest();
        await Grain(plain).SubmitAsync(plain);

        await Eventually.ValueAsync(() => StoredAsync(hooked.RequestId), r => r.State == RequestState.Queued, Patience, "the webhook's request stored while its caller waits");
        Assert.Equal(RequestState.Queued, (await StoredAsync(plain.RequestId)).State);
        await Grain(hooked).CancelAsync();
        Assert.Equal(RequestState.Completed, (await call).State);
    }

    [Fact]
    public async Task A_request_submitted_again_without_waiting_while_its_submit_and_wait_call_waits_is_stored_before_that_answer()
    {
        var request = NewRequest();
        var call = Grain(request).SubmitAndWaitAsync(request, Patience);
        await ReachesAsync(Grain(request), RequestState.Queued, "the request queued");

        // A submission that does not wait promises a request that outlives this node.
        var again = await Grain(request).SubmitAsync(request);

        Assert.Equal(RequestState.Queued, again.State);
        var stored = await StoredAsync(request.RequestId);
        Assert.Equal((request.RequestId, RequestState.Queued), (stored.Request?.RequestId, stored.State));
        await Grain(request).CancelAsync();
        Assert.Equal(RequestState.Completed, (await call).State);
    }

    [Fact]
    public async Task A_start_reported_while_the_write_before_a_submit_and_wait_answer_runs_is_written_after_it()
    {
        var request = NewRequest();
        var grain = Grain(request);
        var hold = new FailingStore.WriteHold(RequestState.Queued);
        FailingStore.HoldWrites[request.RequestId] = hold;

        // The call answers before the request ends, so it stores the request first; that write is held ...
        var call = grain.SubmitAndWaitAsync(request, TimeSpan.FromMilliseconds(300));
        await hold.Entered.Task.WaitAsync(Patience);

        // ... while the router tells the grain the request started.
        var started = grain.StartedAsync("silo-x/cpu:0", hintHit: false, attempt: 1);
        await ReachesAsync(grain, RequestState.InProgress, "the start applied");
        hold.Release.SetResult();
        await started;

        Assert.Equal(RequestState.InProgress, (await call).State);
        var stored = await StoredAsync(request.RequestId);
        Assert.Equal((RequestState.InProgress, "silo-x/cpu:0"), (stored.State, stored.RunnerId));
        await grain.CompleteAsync(Result(request));
    }

    [Fact]
    public async Task A_requeue_reported_while_the_write_before_a_submit_and_wait_answer_runs_is_written_after_it()
    {
        var request = NewRequest();
        var grain = Grain(request);
        var hold = new FailingStore.WriteHold(RequestState.InProgress);
        FailingStore.HoldWrites[request.RequestId] = hold;

        // Started before the call answers (not written then: the start comes within moments, the answer after 3 s);
        // the write made before the answer is held ...
        var call = grain.SubmitAndWaitAsync(request, TimeSpan.FromSeconds(3));
        await ReachesAsync(grain, RequestState.Queued, "the request queued");
        await grain.StartedAsync("silo-x/cpu:0", hintHit: false, attempt: 1);
        await hold.Entered.Task.WaitAsync(Patience);

        // ... while the router reports the runner lost and queues the request again.
        var requeued = grain.RequeuedAsync("silo-x/cpu:0", 1, "Runner silo-x/cpu:0 was lost (test); retrying (attempt 1 of 3 failed).");
        await ReachesAsync(grain, RequestState.Queued, "the requeue applied");
        hold.Release.SetResult();
        await requeued;

        Assert.Equal(RequestState.Queued, (await call).State);
        var stored = await StoredAsync(request.RequestId);
        Assert.Equal((RequestState.Queued, (string?)null), (stored.State, stored.RunnerId));
        await grain.CompleteAsync(Result(request));
    }

    [Fact]
    public async Task A_waiting_caller_gets_its_result_though_its_write_fails_and_the_grain_stores_it_later()
    {
        var request = NewRequest();
        var grain = Grain(request);
        await grain.SubmitAsync(request);

        // Failing until the test says otherwise: the resume timer (1 s) also writes, at moments the test does not choose.
        FailingStore.FailCompletedWrites[request.RequestId] = int.MaxValue;

        var waiting = grain.WaitAsync(TimeSpan.FromSeconds(25));
        var report = grain.CompleteAsync(new InferenceResult(request.RequestId, """{"ok":true}""", null, "silo-x/cpu:0", HintHit: false, Attempt: 1));

        // The runner hears that the result was not stored (it would report it again, or the router would find it) ...
        var failed = await Assert.ThrowsAnyAsync<Exception>(() => report);
        Assert.Contains(FailingStore.Failure, failed.ToString(), StringComparison.Ordinal);

        // ... while the caller has its result without waiting for a write that succeeds.
        var status = await waiting.WaitAsync(Patience);
        Assert.Equal((RequestState.Completed, """{"ok":true}"""), (status.State, status.Result?.OutputJson));

        // A report again while the store still fails; then the store recovers and, with no report to prompt it, the
        // resume timer writes the record.
        await Assert.ThrowsAnyAsync<Exception>(() => grain.CompleteAsync(new InferenceResult(request.RequestId, """{"ok":true}""", null, "silo-x/cpu:0", HintHit: false, Attempt: 1)));
        Assert.Equal(RequestState.Queued, (await StoredAsync(request.RequestId)).State);
        FailingStore.FailCompletedWrites[request.RequestId] = 0;
        var stored = await Eventually.ValueAsync(() => StoredAsync(request.RequestId), r => r.State == RequestState.Completed, Patience, "the result stored");
        Assert.Equal("""{"ok":true}""", stored.Result!.OutputJson);
    }

    private async Task<RequestRecord> StoredAsync(string requestId)
    {
        var storage = cluster.Cluster.Silos[0].ServiceProvider.GetRequiredKeyedService<IGrainStorage>(RequestStorage.Name);
        var state = new GrainState<RequestRecord>(new RequestRecord());
        await storage.ReadStateAsync("request", cluster.Cluster.Client.GetGrain<IRequestGrain>(requestId).GetGrainId(), state);
        return state.State!;
    }

    /// <summary>The memory store, failing the writes of a completed record as often as a test asks, per request.</summary>
    public sealed class FailingStore(IGrainStorage inner) : IGrainStorage
    {
        public const string Failure = "the test's store refused the write";

        private static readonly ConcurrentDictionary<string, ConcurrentQueue<RequestState>> Writes = new(StringComparer.Ordinal);

        public static ConcurrentDictionary<string, int> FailCompletedWrites { get; } = new(StringComparer.Ordinal);

        /// <summary>Requests whose records are refused while queued or running.</summary>
        public static ConcurrentDictionary<string, bool> FailUnfinishedWrites { get; } = new(StringComparer.Ordinal);

        /// <summary>The state of each record of the request written so far, failed writes included, in order.</summary>
        public static RequestState[] WritesOf(string requestId) => Writes.TryGetValue(requestId, out var writes) ? [.. writes] : [];

        public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) => inner.ReadStateAsync(stateName, grainId, grainState);

        /// <summary>Per request, a write of its record in a given state to hold, once written, until the test releases it.</summary>
        public static ConcurrentDictionary<string, WriteHold> HoldWrites { get; } = new(StringComparer.Ordinal);

        public async Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
        {
            if (grainState.State is RequestRecord { Request: { } written } record)
            {
                Writes.GetOrAdd(written.RequestId, _ => new()).Enqueue(record.State);
            }

            if (grainState.State is RequestRecord { Request: { } unfinished } unfinishedRecord && unfinishedRecord.State != RequestState.Completed
                && FailUnfinishedWrites.ContainsKey(unfinished.RequestId))
            {
                throw new IOException(Failure);
            }

            if (grainState.State is RequestRecord { State: RequestState.Completed, Request: { } request }
                && FailCompletedWrites.TryGetValue(request.RequestId, out var left) && left > 0)
            {
                FailCompletedWrites[request.RequestId] = left - 1;
                throw new IOException(Failure);
            }

            await inner.WriteStateAsync(stateName, grainId, grainState);
            if (grainState.State is RequestRecord { Request: { } held } heldRecord && HoldWrites.TryGetValue(held.RequestId, out var hold)
                && hold.State == heldRecord.State && HoldWrites.TryRemove(held.RequestId, out _))
            {
                hold.Entered.TrySetResult();
                await hold.Release.Task;
            }
        }

        /// <summary>A held write: <see cref="Entered"/> once the store has the record, and the write returns once <see cref="Release"/> is set.</summary>
        public sealed class WriteHold(RequestState state)
        {
            public RequestState State { get; } = state;

            public TaskCompletionSource Entered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

            public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) => inner.ClearStateAsync(stateName, grainId, grainState);
    }

    public sealed class FailingStoreProfile : IClusterProfile
    {
        private const string Inner = "failing-store-inner";

        public IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>
        {
            ["FalHints:Router:ResumeInterval"] = "00:00:01",
        };

        public void ConfigureSilo(ISiloBuilder silo)
        {
            var memory = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["FalHints:Storage:Mode"] = "memory" }).Build();
            silo.AddFalHintsRequestStorage(memory, Inner);
            silo.Services.AddKeyedSingleton<IGrainStorage>(RequestStorage.Name, (sp, _) => new FailingStore(sp.GetRequiredKeyedService<IGrainStorage>(Inner)));
        }
    }
}
