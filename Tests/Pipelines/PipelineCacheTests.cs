using FalHints.Client.Contracts;
using FalHints.Runner.Devices;
using FalHints.Runner.Pipelines;
using Microsoft.Extensions.Time.Testing;

namespace FalHints.Tests.Pipelines;

public sealed class PipelineCacheTests : IDisposable
{
    private readonly DeviceExecutor _device = new("cpu:0");
    private readonly FakeTimeProvider _time = new();
    private readonly List<FakePipeline> _loaded = [];

    public void Dispose() => _device.Dispose();

    private AppPipelineCache NewCache(long budget, out PipelineCache cache)
    {
        cache = new PipelineCache(budget, _device, _time);
        return cache.For("o/app");
    }

    private Func<Task<FakePipeline>> Loader(string name, Task? gate = null) => async () =>
    {
        if (gate is not null)
        {
            await gate;
        }

        _time.Advance(TimeSpan.FromMilliseconds(100));
        var pipeline = new FakePipeline(name);
        lock (_loaded)
        {
            _loaded.Add(pipeline);
        }

        return pipeline;
    };

    private static async Task Use(AppPipelineCache cache, string key, long size, Func<Task<FakePipeline>> load)
    {
        using var lease = await cache.AcquireAsync(key, size, load, CancellationToken.None);
        Assert.Equal(key, lease.Value.Name);
    }

    [Fact]
    public async Task Evicts_the_least_recently_used_pipeline_to_stay_within_the_budget_and_disposes_it()
    {
        var cache = NewCache(100, out var shared);

        await Use(cache, "a", 40, Loader("a"));
        await Use(cache, "b", 40, Loader("b"));
        await Use(cache, "a", 40, Loader("a"));
        await Use(cache, "c", 40, Loader("c"));

        Assert.Equal(["c", "a"], cache.Keys);
        Assert.True(_loaded.Single(p => p.Name == "b").Disposed);
        Assert.False(_loaded.Single(p => p.Name == "a").Disposed);
        var usage = shared.Usage();
        Assert.Equal((80L, 100L, 1L, 3L, 3L, 1L), (usage.BytesUsed, usage.BudgetBytes, usage.Hits, usage.Misses, usage.Loads, usage.Evictions));
        Assert.Equal(100, usage.MeanLoadMs);
    }

    [Fact]
    public async Task Pipeline_in_use_is_never_evicted_and_a_load_that_cannot_fit_fails_cleanly()
    {
        var cache = NewCache(100, out var shared);
        using var held = await cache.AcquireAsync("a", 60, Loader("a"), CancellationToken.None);

        var error = await Assert.ThrowsAsync<PipelineCacheException>(() => Use(cache, "b", 60, Loader("b")));

        Assert.Equal(ErrorCodes.InsufficientMemory, error.Code);
        Assert.Contains("'b' needs 60 bytes", error.Message, StringComparison.Ordinal);
        Assert.False(held.Value.Disposed);
        Assert.Equal(["a"], cache.Keys);
        Assert.Empty(cache.Loading);
        Assert.Equal(60, shared.Usage().BytesUsed);
    }

    [Fact]
    public async Task Model_larger_than_the_whole_budget_is_refused_without_evicting_anything()
    {
        var cache = NewCache(100, out _);
        await Use(cache, "a", 50, Loader("a"));

        var error = await Assert.ThrowsAsync<PipelineCacheException>(() => Use(cache, "huge", 101, Loader("huge")));

        Assert.Contains("more than the runner's whole pipeline budget of 100 bytes", error.Message, StringComparison.Ordinal);
        Assert.Equal(["a"], cache.Keys);
    }

    [Fact]
    public async Task Concurrent_requests_for_one_key_share_a_single_load_and_the_key_shows_as_loading()
    {
        var cache = NewCache(100, out var shared);
        var gate = new TaskCompletionSource();
        var load = Loader("x", gate.Task);

        var first = cache.AcquireAsync("x", 10, load, CancellationToken.None);
        var second = cache.AcquireAsync("x", 10, load, CancellationToken.None);

        Assert.Equal(["x"], cache.Loading);
        Assert.Empty(cache.Keys);
        gate.SetResult();
        using var a = await first;
        using var b = await second;

        Assert.Same(a.Value, b.Value);
        Assert.Single(_loaded);
        Assert.Equal(["x"], cache.Keys);
        Assert.Empty(cache.Loading);
        Assert.Equal((1L, 1L, 10L), (shared.Usage().Loads, shared.Usage().Hits, shared.Usage().BytesUsed));
    }

    [Fact]
    public async Task Failed_load_caches_nothing_and_the_next_request_loads_again()
    {
        var cache = NewCache(100, out var shared);

        var error = await Assert.ThrowsAsync<InvalidDataException>(() => Use(cache, "bad", 30, () => throw new InvalidDataException("corrupt")));

        Assert.Equal("corrupt", error.Message);
        Assert.Empty(cache.Keys);
        Assert.Empty(cache.Loading);
        Assert.Equal(0, shared.Usage().BytesUsed);
        await Use(cache, "bad", 30, Loader("bad"));
        Assert.Equal(["bad"], cache.Keys);
    }

    [Fact]
    public async Task Apps_see_only_their_own_keys()
    {
        var shared = new PipelineCache(100, _device, _time);

        using (await shared.For("o/one").AcquireAsync("m", 10, Loader("m"), CancellationToken.None))
        using (await shared.For("o/two").AcquireAsync("m", 10, Loader("m"), CancellationToken.None))
        {
        }

        Assert.Equal(["m"], shared.For("o/one").Keys);
        Assert.Equal(2, _loaded.Count);
        Assert.Equal(20, shared.Usage().BytesUsed);
    }

    [Fact]
    public async Task Cancelled_waiter_does_not_cancel_the_shared_load()
    {
        var cache = NewCache(100, out _);
        var gate = new TaskCompletionSource();
        using var cancel = new CancellationTokenSource();
        var load = Loader("x", gate.Task);

        var cancelled = cache.AcquireAsync("x", 10, load, cancel.Token);
        var patient = cache.AcquireAsync("x", 10, load, CancellationToken.None);
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled);
        gate.SetResult();
        using var lease = await patient;

        Assert.Equal("x", lease.Value.Name);
        Assert.Equal(["x"], cache.Keys);
    }

    private AppPipelineCache NewTieredCache(long budget, long hostBudget, out PipelineCache cache)
    {
        cache = new PipelineCache(budget, _device, _time, hostBudgetBytes: hostBudget);
        return cache.For("o/app");
    }

    private readonly List<TieredPipeline> _tiered = [];

    private Func<Task<TieredPipeline>> TieredLoader(string name) => () =>
    {
        _time.Advance(TimeSpan.FromMilliseconds(100));
        var pipeline = new TieredPipeline(name, _tiered);
        lock (_tiered)
        {
            _tiered.Add(pipeline);
        }

        return Task.FromResult(pipeline);
    };

    private static Func<Task<TieredPipeline>> MustNotLoad(string name) => () => throw new InvalidOperationException($"'{name}' was loaded again.");

    private static async Task<TieredPipeline> UseTiered(AppPipelineCache cache, string key, long size, Func<Task<TieredPipeline>> load)
    {
        using var lease = await cache.AcquireAsync(key, size, load, CancellationToken.None);
        Assert.Equal(key, lease.Value.Name);
        Assert.False(lease.Value.Disposed);
        return lease.Value;
    }

    /// <summary>Waits until no demotion is in flight, so what the cache reports has settled.</summary>
    private Task Settled() => _device.RunAsync(() => { });

    [Fact]
    public async Task Evicted_pipeline_is_kept_in_host_memory_and_promoted_back_without_a_load()
    {
        var cache = NewTieredCache(100, 100, out var shared);
        var a = await UseTiered(cache, "a", 40, TieredLoader("a"));
        await UseTiered(cache, "b", 40, TieredLoader("b"));
        await UseTiered(cache, "c", 40, TieredLoader("c"));
        await Settled();

        Assert.Equal(["c", "b"], cache.Keys);
        Assert.Equal(["a"], cache.Warm);
        Assert.True(a.Disposed);
        var demoted = shared.Usage();
        Assert.Equal((80L, 40L, 100L, 1L, 1L), (demoted.BytesUsed, demoted.HostBytesUsed, demoted.HostBudgetBytes, demoted.Evictions, demoted.Demotions));

        var promoted = await UseTiered(cache, "a", 40, MustNotLoad("a"));
        await Settled();

        Assert.NotSame(a, promoted);
        Assert.Equal(["a", "c"], cache.Keys);
        Assert.Equal(["b"], cache.Warm);
        var usage = shared.Usage();
        Assert.Equal((80L, 40L, 3L, 1L, 2L), (usage.BytesUsed, usage.HostBytesUsed, usage.Loads, usage.Promotions, usage.Demotions));
        Assert.Equal((3L, 0L), (usage.Misses, usage.Hits));
        Assert.True(a.Warm!.Disposed, "the host copy is released once the pipeline is back on the device");
    }

    [Fact]
    public async Task Host_tier_drops_its_least_recently_used_pipelines_to_stay_within_its_budget()
    {
        var cache = NewTieredCache(50, 90, out var shared);
        foreach (var key in new[] { "a", "b", "c", "d" })
        {
            await UseTiered(cache, key, 40, TieredLoader(key));
            await Settled();
            Assert.True(shared.Usage().HostBytesUsed <= 90);
        }

        Assert.Equal(["d"], cache.Keys);
        Assert.Equal(["c", "b"], cache.Warm);
        Assert.True(_tiered.Single(p => p.Name == "a").Warm!.Disposed);
        Assert.Equal((40L, 80L, 3L, 3L), (shared.Usage().BytesUsed, shared.Usage().HostBytesUsed, shared.Usage().Evictions, shared.Usage().Demotions));

        // Promoting b takes it out of host memory and makes room on the device by demoting d, which fits beside c.
        await UseTiered(cache, "b", 40, MustNotLoad("b"));
        await Settled();

        Assert.Equal(["b"], cache.Keys);
        Assert.Equal(["d", "c"], cache.Warm);
        Assert.Equal((40L, 80L), (shared.Usage().BytesUsed, shared.Usage().HostBytesUsed));
    }

    [Fact]
    public async Task Pipeline_larger_than_the_host_budget_is_dropped_rather_than_kept()
    {
        var cache = NewTieredCache(100, 50, out var shared);
        var big = await UseTiered(cache, "big", 60, TieredLoader("big"));
        await UseTiered(cache, "next", 60, TieredLoader("next"));
        await Settled();

        Assert.Empty(cache.Warm);
        Assert.Null(big.Warm);
        Assert.True(big.Disposed);
        Assert.Equal((0L, 0L, 1L), (shared.Usage().HostBytesUsed, shared.Usage().Demotions, shared.Usage().Evictions));
    }

    [Fact]
    public async Task Concurrent_requests_for_a_warm_pipeline_share_one_promotion_shown_as_loading()
    {
        var cache = NewTieredCache(50, 100, out var shared);
        var a = await UseTiered(cache, "a", 40, TieredLoader("a"));
        await UseTiered(cache, "b", 40, TieredLoader("b"));
        await Settled();
        var gate = new TaskCompletionSource();
        a.Warm!.Gate = gate.Task;

        var first = cache.AcquireAsync("a", 40, MustNotLoad("a"), CancellationToken.None);
        var second = cache.AcquireAsync("a", 40, MustNotLoad("a"), CancellationToken.None);
        Assert.Equal(["a"], cache.Loading);
        gate.SetResult();
        using var one = await first;
        using var two = await second;

        Assert.Same(one.Value, two.Value);
        Assert.Equal(1, a.Warm.Promotions);
        Assert.Equal((1L, 1L), (shared.Usage().Promotions, shared.Usage().Hits));
    }

    [Fact]
    public async Task Request_for_a_pipeline_on_its_way_to_host_memory_waits_and_promotes_it()
    {
        var cache = NewTieredCache(80, 100, out var shared);
        var a = await UseTiered(cache, "a", 40, TieredLoader("a"));
        await UseTiered(cache, "c", 40, TieredLoader("c"));
        var gate = new TaskCompletionSource();
        a.DemotionGate = gate.Task;

        var b = UseTiered(cache, "b", 40, TieredLoader("b"));
        var again = cache.AcquireAsync("a", 40, MustNotLoad("a"), CancellationToken.None);
        Assert.Equal(["a"], cache.Warm);
        Assert.False(again.IsCompleted);
        gate.SetResult();
        await b;
        using var lease = await again;
        await Settled();

        Assert.Equal("a", lease.Value.Name);
        Assert.Equal(["c"], cache.Warm);
        Assert.Equal((2L, 1L, 3L), (shared.Usage().Demotions, shared.Usage().Promotions, shared.Usage().Loads));
    }

    [Fact]
    public async Task Pipeline_whose_copy_to_host_fails_is_dropped_cleanly()
    {
        var cache = NewTieredCache(50, 100, out var shared);
        var a = await UseTiered(cache, "a", 40, TieredLoader("a"));
        a.FailToHost = true;
        await UseTiered(cache, "b", 40, TieredLoader("b"));
        await Settled();

        Assert.Empty(cache.Warm);
        Assert.True(a.Disposed);
        Assert.Equal((0L, 0L), (shared.Usage().HostBytesUsed, shared.Usage().Demotions));
        await UseTiered(cache, "a", 40, TieredLoader("a"));
    }

    [Fact]
    public async Task Forgotten_pipeline_leaves_the_device_and_the_host_tier()
    {
        var cache = NewTieredCache(50, 100, out var shared);
        var a = await UseTiered(cache, "a", 40, TieredLoader("a"));
        var b = await cache.AcquireAsync("b", 40, TieredLoader("b"), CancellationToken.None);
        await Settled();

        cache.Forget("a");
        cache.Forget("b");
        await Settled();

        Assert.Empty(cache.Warm);
        Assert.Empty(cache.Keys);
        Assert.True(a.Warm!.Disposed);
        Assert.False(b.Value.Disposed, "a pipeline in use is released only when its lease is");
        Assert.Equal(40, shared.Usage().BytesUsed);
        b.Dispose();
        await Settled();
        Assert.True(b.Value.Disposed);
        Assert.Equal((0L, 0L), (shared.Usage().BytesUsed, shared.Usage().HostBytesUsed));
    }

    private sealed class FakePipeline(string name) : IDisposable
    {
        public string Name { get; } = name;

        public bool Disposed { get; private set; }

        public void Dispose() => Disposed = true;
    }

    /// <summary>A pipeline that can go to host memory and back; gates hold the device thread to stage interleavings.</summary>
    private sealed class TieredPipeline(string name, List<TieredPipeline> created) : ITieredPipeline
    {
        public string Name { get; } = name;

        public bool Disposed { get; private set; }

        public bool FailToHost { get; set; }

        public Task? DemotionGate { get; set; }

        public FakeWarm? Warm { get; private set; }

        public IWarmPipeline ToHost()
        {
            Assert.False(Disposed);
            DemotionGate?.GetAwaiter().GetResult();
            if (FailToHost)
            {
                throw new InvalidOperationException("no pinned memory left");
            }

            return Warm = new FakeWarm(this, created);
        }

        public void Dispose() => Disposed = true;
    }

    private sealed class FakeWarm(TieredPipeline source, List<TieredPipeline> created) : IWarmPipeline
    {
        public long HostBytes => 40;

        public bool Disposed { get; private set; }

        public int Promotions { get; private set; }

        public Task? Gate { get; set; }

        public ITieredPipeline ToDevice()
        {
            Assert.False(Disposed);
            Gate?.GetAwaiter().GetResult();
            Promotions++;
            var pipeline = new TieredPipeline(source.Name, created);
            lock (created)
            {
                created.Add(pipeline);
            }

            return pipeline;
        }

        public void Dispose() => Disposed = true;
    }
}
