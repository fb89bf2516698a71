using System.Collections.Concurrent;
using FalHints.Client.Contracts;
using FalHints.Host.Hosting;
using FalHints.Router.Requests;
using FalHints.Tests.Support;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Storage;

namespace FalHints.Tests.Requests;

/// <summary>A caller waiting for a result against a request store whose write of that result fails.</summary>
public sealed class CompletionWriteTests(FalHintsCluster<CompletionWriteTests.FailingStoreProfile> cluster)
    : IClassFixture<FalHintsCluster<CompletionWriteTests.FailingStoreProfile>>
{
    private const string NowhereApp = "tests/nowhere";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task A_waiting_caller_gets_its_result_though_its_write_fails_and_the_grain_stores_it_later()
    {
        var request = new InferenceRequest(Guid.NewGuid().ToString("N"), NowhereApp, """{"prompt":"x"}""", Hint: null);
        var grain = cluster.Cluster.Client.GetGrain<IRequestGrain>(request.RequestId);
        await grain.SubmitAsync(request);
        FailingStore.FailCompletedWrites[request.RequestId] = 2;

        var waiting = grain.WaitAsync(TimeSpan.FromSeconds(25));
        var report = grain.CompleteAsync(new InferenceResult(request.RequestId, """{"ok":true}""", null, "silo-x/cpu:0", HintHit: false, Attempt: 1));

        // The runner hears that the result was not stored (it would report it again, or the router would find it) ...
        var failed = await Assert.ThrowsAnyAsync<Exception>(() => report);
        Assert.Contains(FailingStore.Failure, failed.ToString(), StringComparison.Ordinal);

        // ... while the caller has its result without waiting for a write that succeeds.
        var status = await waiting.WaitAsync(Patience);
        Assert.Equal((RequestState.Completed, """{"ok":true}"""), (status.State, status.Result?.OutputJson));

        // A report again while the store still fails, then the resume timer: the record reaches the store.
        await Assert.ThrowsAnyAsync<Exception>(() => grain.CompleteAsync(new InferenceResult(request.RequestId, """{"ok":true}""", null, "silo-x/cpu:0", HintHit: false, Attempt: 1)));
        var stored = await Eventually.ValueAsync(() => StoredAsync(request.RequestId), r => r.State == RequestState.Completed, Patience, "the result stored");
        Assert.Equal("""{"ok":true}""", stored.Result!.OutputJson);
        Assert.Equal(0, FailingStore.FailCompletedWrites[request.RequestId]);
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

        public static ConcurrentDictionary<string, int> FailCompletedWrites { get; } = new(StringComparer.Ordinal);

        public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) => inner.ReadStateAsync(stateName, grainId, grainState);

        public Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
        {
            if (grainState.State is RequestRecord { State: RequestState.Completed, Request: { } request }
                && FailCompletedWrites.TryGetValue(request.RequestId, out var left) && left > 0)
            {
                FailCompletedWrites[request.RequestId] = left - 1;
                throw new IOException(Failure);
            }

            return inner.WriteStateAsync(stateName, grainId, grainState);
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
