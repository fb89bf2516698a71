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

    private sealed class FakePipeline(string name) : IDisposable
    {
        public string Name { get; } = name;

        public bool Disposed { get; private set; }

        public void Dispose() => Disposed = true;
    }
}
