using FalHints.Client.Contracts;
using FalHints.Runner.Devices;

namespace FalHints.Runner.Pipelines;

/// <summary>A pipeline that cannot be loaded within the cache's budget; <see cref="Code"/> is <c>insufficient_memory</c>.</summary>
public sealed class PipelineCacheException(string message) : Exception(message)
{
    /// <summary>The request error code.</summary>
    public string Code { get; } = ErrorCodes.InsufficientMemory;
}

/// <summary>A completed load onto the device: from the model store, or promoted from host memory.</summary>
/// <param name="Elapsed">How long it took.</param>
/// <param name="Bytes">The pipeline's size.</param>
/// <param name="FromHost">True for a promotion from the host tier.</param>
public readonly record struct PipelineLoad(TimeSpan Elapsed, long Bytes, bool FromHost);

/// <summary>
/// The pipelines one runner holds, within a device memory budget in bytes and, on GPU runners, a host memory budget.
/// Loads are single-flight (concurrent requests for one key share one load), a load reserves its bytes before it starts,
/// and room is made by evicting the least recently used pipelines that no request is using; a load starts only once the
/// pipelines it evicts have left the device. With a host budget, an evicted pipeline that can (see
/// <see cref="ITieredPipeline"/>) is first copied to host memory, where the least recently used are dropped to stay within
/// that budget; a request for it then promotes it back, which costs only the copy to the device. Evicted pipelines are
/// moved and disposed on the device's thread. A failed load caches nothing. Keys are scoped per app (see <see cref="For"/>).
/// </summary>
public sealed class PipelineCache : IDisposable
{
    private readonly Lock _gate = new();
    private readonly Dictionary<(string App, string Key), Entry> _entries = [];
    private readonly LinkedList<Entry> _recency = new();
    private readonly LinkedList<Entry> _hostRecency = new();
    private readonly DeviceExecutor _executor;
    private readonly TimeProvider _time;
    private readonly Action<PipelineLoad>? _loaded;
    private long _bytesUsed;
    private long _hostBytesUsed;
    private long _hits;
    private long _misses;
    private long _loads;
    private long _evictions;
    private long _promotions;
    private long _demotions;
    private readonly Transfers _fromStore = new();
    private readonly Transfers _fromHost = new();

    /// <summary>
    /// Creates an empty cache of <paramref name="budgetBytes"/> whose pipelines live on <paramref name="executor"/>'s
    /// device, with a host tier of <paramref name="hostBudgetBytes"/> (0: none); <paramref name="loaded"/> hears of each
    /// completed load and promotion.
    /// </summary>
    public PipelineCache(long budgetBytes, DeviceExecutor executor, TimeProvider time, Action<PipelineLoad>? loaded = null, long hostBudgetBytes = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(budgetBytes);
        ArgumentOutOfRangeException.ThrowIfNegative(hostBudgetBytes);
        BudgetBytes = budgetBytes;
        HostBudgetBytes = hostBudgetBytes;
        _executor = executor;
        _time = time;
        _loaded = loaded;
    }

    /// <summary>The device memory budget, in bytes.</summary>
    public long BudgetBytes { get; }

    /// <summary>The host memory budget, in bytes (0: no host tier).</summary>
    public long HostBudgetBytes { get; }

    /// <summary>The cache as one app sees it: its own keys only.</summary>
    public AppPipelineCache For(string appId) => new(this, appId);

    /// <summary>Counters and bytes, for hints events and metrics.</summary>
    public CacheUsage Usage()
    {
        lock (_gate)
        {
            return new CacheUsage(_bytesUsed, BudgetBytes, _hits, _misses, _loads, _evictions, _fromStore.MeanMs,
                _hostBytesUsed, HostBudgetBytes, _promotions, _demotions, _fromHost.MeanMs, _fromStore.BytesPerSecond, _fromHost.BytesPerSecond);
        }
    }

    internal async Task<PipelineLease<T>> AcquireAsync<T>(string app, string key, long sizeBytes, Func<Task<T>> load, CancellationToken cancellationToken)
        where T : class, IDisposable
    {
        ArgumentOutOfRangeException.ThrowIfNegative(sizeBytes);
        Entry entry;
        while (true)
        {
            Task? demotion = null;
            lock (_gate)
            {
                if (!_entries.TryGetValue((app, key), out var existing))
                {
                    _misses++;
                    var evictions = MakeRoom(key, sizeBytes);
                    entry = new Entry(app, key, sizeBytes) { Users = 1, Tier = Tier.Loading };
                    _entries.Add((app, key), entry);
                    _bytesUsed += sizeBytes;
                    entry.Load = LoadAsync(entry, evictions, load);
                    break;
                }

                switch (existing.Tier)
                {
                    case Tier.Loading or Tier.Device:
                        entry = existing;
                        entry.Users++;
                        _hits++;
                        if (entry.Node is not null)
                        {
                            _recency.Remove(entry.Node);
                            _recency.AddFirst(entry.Node);
                        }

                        break;
                    case Tier.Host:
                        entry = existing;
                        Promote(entry, key);
                        break;
                    default:
                        // On its way to host memory: promote it once it is there.
                        demotion = existing.Demotion!.Task;
                        entry = existing;
                        break;
                }
            }

            if (demotion is null)
            {
                break;
            }

            await demotion.WaitAsync(cancellationToken).ConfigureAwait(false);
        }

        try
        {
            var value = await entry.Load!.WaitAsync(cancellationToken).ConfigureAwait(false);
            var lease = new PipelineLease<T>(this, entry, (T)value);
            PipelineLeaseScope.Track(lease);
            return lease;
        }
        catch
        {
            Release(entry);
            throw;
        }
    }

    internal IReadOnlyList<string> ReadyKeys(string app)
    {
        lock (_gate)
        {
            return [.. _recency.Where(e => e.App == app).Select(e => e.Key)];
        }
    }

    internal IReadOnlyList<string> LoadingKeys(string app)
    {
        lock (_gate)
        {
            return [.. _entries.Values.Where(e => e.App == app && e.Tier == Tier.Loading).Select(e => e.Key).Order(StringComparer.Ordinal)];
        }
    }

    internal IReadOnlyList<string> WarmKeys(string app)
    {
        lock (_gate)
        {
            // Those still being copied to host memory were on the device a moment ago: the most recently used.
            return [.. _entries.Values.Where(e => e.App == app && e.Tier == Tier.Demoting).Select(e => e.Key).Order(StringComparer.Ordinal),
                .. _hostRecency.Where(e => e.App == app).Select(e => e.Key)];
        }
    }

    /// <summary>
    /// Drops <paramref name="key"/> from every tier (its model left the store): at once when no request uses it, else when
    /// the last lease is given back. A load in progress is left to finish.
    /// </summary>
    internal void Forget(string app, string key)
    {
        List<IDisposable> released = [];
        lock (_gate)
        {
            if (!_entries.TryGetValue((app, key), out var entry) || entry.Tier is Tier.Loading or Tier.Demoting)
            {
                return;
            }

            _entries.Remove((app, key));
            if (entry.Tier == Tier.Host)
            {
                _hostRecency.Remove(entry.HostNode!);
                _hostBytesUsed -= entry.SizeBytes;
                released.Add(entry.Warm!);
            }
            else
            {
                _recency.Remove(entry.Node!);
                entry.Node = null;
                entry.Forgotten = true;
                if (entry.Users == 0)
                {
                    _bytesUsed -= entry.SizeBytes;
                    released.Add(entry.Value!);
                }
            }
        }

        DisposeOnDevice(released);
    }

    internal void Release(Entry entry)
    {
        IDisposable? forgotten = null;
        lock (_gate)
        {
            entry.Users--;
            if (entry.Forgotten && entry.Users == 0 && entry.Value is not null)
            {
                _bytesUsed -= entry.SizeBytes;
                forgotten = entry.Value;
            }
        }

        if (forgotten is not null)
        {
            DisposeOnDevice([forgotten]);
        }
    }

    /// <summary>Disposes every pipeline held, in either tier; call when the runner stops, on the device's thread.</summary>
    public void Dispose()
    {
        List<Entry> held;
        lock (_gate)
        {
            held = [.. _recency, .. _hostRecency];
            _recency.Clear();
            _hostRecency.Clear();
            _entries.Clear();
            _bytesUsed = 0;
            _hostBytesUsed = 0;
        }

        foreach (var entry in held)
        {
            entry.Value?.Dispose();
            entry.Warm?.Dispose();
        }
    }

    /// <summary>
    /// Chooses idle pipelines to evict, least recently used first, until <paramref name="sizeBytes"/> more fit the device
    /// budget, and starts moving them off the device; the returned task completes when they are gone from it.
    /// </summary>
    private Task MakeRoom(string key, long sizeBytes)
    {
        if (sizeBytes > BudgetBytes)
        {
            throw new PipelineCacheException($"'{key}' needs {sizeBytes} bytes, more than the runner's whole pipeline budget of {BudgetBytes} bytes.");
        }

        var idleBytes = _recency.Where(e => e.Users == 0).Sum(e => e.SizeBytes);
        if (_bytesUsed - idleBytes + sizeBytes > BudgetBytes)
        {
            throw new PipelineCacheException(
                $"'{key}' needs {sizeBytes} bytes but only {BudgetBytes - _bytesUsed + idleBytes} of the runner's {BudgetBytes}-byte budget can be freed; the rest is held by pipelines in use or loading.");
        }

        List<Entry> demoted = [];
        List<IDisposable> dropped = [];
        for (var node = _recency.Last; node is not null && _bytesUsed + sizeBytes > BudgetBytes;)
        {
            var previous = node.Previous;
            var victim = node.Value;
            if (victim.Users == 0)
            {
                _recency.Remove(node);
                victim.Node = null;
                _bytesUsed -= victim.SizeBytes;
                _evictions++;
                if (HostBudgetBytes > 0 && victim.Value is ITieredPipeline && MakeHostRoom(victim.SizeBytes, dropped))
                {
                    victim.Tier = Tier.Demoting;
                    victim.Demotion = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    _hostBytesUsed += victim.SizeBytes;
                    demoted.Add(victim);
                }
                else
                {
                    _entries.Remove((victim.App, victim.Key));
                    dropped.Add(victim.Value!);
                }
            }

            node = previous;
        }

        return demoted.Count == 0 && dropped.Count == 0
            ? Task.CompletedTask
            : _executor.RunAsync(() => MoveOffDevice(demoted, dropped), CancellationToken.None);
    }

    /// <summary>Drops warm pipelines, least recently used first, until <paramref name="sizeBytes"/> more fit the host budget; false when they cannot.</summary>
    private bool MakeHostRoom(long sizeBytes, List<IDisposable> dropped)
    {
        if (sizeBytes > HostBudgetBytes)
        {
            return false;
        }

        // Pipelines still being copied hold their host bytes and cannot be dropped yet.
        var pinned = _hostBytesUsed - _hostRecency.Sum(e => e.SizeBytes);
        if (pinned + sizeBytes > HostBudgetBytes)
        {
            return false;
        }

        while (_hostBytesUsed + sizeBytes > HostBudgetBytes)
        {
            var oldest = _hostRecency.Last!.Value;
            _hostRecency.RemoveLast();
            _entries.Remove((oldest.App, oldest.Key));
            _hostBytesUsed -= oldest.SizeBytes;
            dropped.Add(oldest.Warm!);
        }

        return true;
    }

    /// <summary>Runs on the device's thread: copies the demoted pipelines to host memory, then frees the device of them.</summary>
    private void MoveOffDevice(List<Entry> demoted, List<IDisposable> dropped)
    {
        foreach (var entry in demoted)
        {
            IWarmPipeline? warm = null;
            try
            {
                warm = ((ITieredPipeline)entry.Value!).ToHost();
            }
            catch (Exception)
            {
                // Host memory ran out, or the copy failed: the pipeline is dropped, as without a host tier.
            }

            entry.Value!.Dispose();
            lock (_gate)
            {
                entry.Value = null;
                if (warm is not null)
                {
                    entry.Warm = warm;
                    entry.Tier = Tier.Host;
                    entry.HostNode = _hostRecency.AddFirst(entry);
                    _demotions++;
                }
                else
                {
                    _entries.Remove((entry.App, entry.Key));
                    _hostBytesUsed -= entry.SizeBytes;
                }
            }

            entry.Demotion!.SetResult();
        }

        dropped.ForEach(d => d.Dispose());
    }

    /// <summary>Starts bringing a warm pipeline back onto the device; under the lock.</summary>
    private void Promote(Entry entry, string key)
    {
        // Out of the host tier first, so that making room on the device cannot drop it; back in if there is no room.
        _hostRecency.Remove(entry.HostNode!);
        entry.HostNode = null;
        _hostBytesUsed -= entry.SizeBytes;
        Task evictions;
        try
        {
            evictions = MakeRoom(key, entry.SizeBytes);
        }
        catch
        {
            entry.HostNode = _hostRecency.AddFirst(entry);
            _hostBytesUsed += entry.SizeBytes;
            throw;
        }

        var warm = entry.Warm!;
        entry.Warm = null;
        entry.Tier = Tier.Loading;
        entry.Users = 1;
        _bytesUsed += entry.SizeBytes;
        entry.Load = PromoteAsync(entry, evictions, warm);
    }

    private async Task<IDisposable> LoadAsync<T>(Entry entry, Task evictions, Func<Task<T>> load)
        where T : class, IDisposable
    {
        try
        {
            // Shared by every request waiting for this key, so no single request's cancellation stops it.
            await evictions.ConfigureAwait(false);
            var started = _time.GetTimestamp();
            var value = await Task.Run(load, CancellationToken.None).ConfigureAwait(false);
            Loaded(entry, value, _time.GetElapsedTime(started), fromHost: false);
            return value;
        }
        catch
        {
            Failed(entry);
            throw;
        }
    }

    private async Task<IDisposable> PromoteAsync(Entry entry, Task evictions, IWarmPipeline warm)
    {
        try
        {
            await evictions.ConfigureAwait(false);
            var started = _time.GetTimestamp();
            var value = await _executor.RunAsync(warm.ToDevice, CancellationToken.None).ConfigureAwait(false);
            Loaded(entry, value, _time.GetElapsedTime(started), fromHost: true);
            return value;
        }
        catch
        {
            Failed(entry);
            throw;
        }
        finally
        {
            await _executor.RunAsync(warm.Dispose, CancellationToken.None).ConfigureAwait(false);
        }
    }

    private void Loaded(Entry entry, IDisposable value, TimeSpan elapsed, bool fromHost)
    {
        lock (_gate)
        {
            entry.Value = value;
            entry.Tier = Tier.Device;
            entry.Node = _recency.AddFirst(entry);
            if (fromHost)
            {
                _promotions++;
                _fromHost.Add(elapsed, entry.SizeBytes);
            }
            else
            {
                _loads++;
                _fromStore.Add(elapsed, entry.SizeBytes);
            }
        }

        _loaded?.Invoke(new PipelineLoad(elapsed, entry.SizeBytes, fromHost));
    }

    private void Failed(Entry entry)
    {
        lock (_gate)
        {
            _entries.Remove((entry.App, entry.Key));
            _bytesUsed -= entry.SizeBytes;
        }
    }

    private void DisposeOnDevice(List<IDisposable> released)
    {
        if (released.Count > 0)
        {
            _ = _executor.RunAsync(() => released.ForEach(d => d.Dispose()), CancellationToken.None);
        }
    }

    internal enum Tier
    {
        Loading,
        Device,
        Demoting,
        Host,
    }

    internal sealed class Entry(string app, string key, long sizeBytes)
    {
        public string App { get; } = app;

        public string Key { get; } = key;

        public long SizeBytes { get; } = sizeBytes;

        public Tier Tier { get; set; }

        public int Users { get; set; }

        public Task<IDisposable>? Load { get; set; }

        public IDisposable? Value { get; set; }

        public LinkedListNode<Entry>? Node { get; set; }

        public IWarmPipeline? Warm { get; set; }

        public LinkedListNode<Entry>? HostNode { get; set; }

        public TaskCompletionSource? Demotion { get; set; }

        /// <summary>Dropped while in use (its model left the store): disposed when the last lease is given back.</summary>
        public bool Forgotten { get; set; }
    }

    /// <summary>Completed transfers of one kind: how many bytes in how long.</summary>
    private sealed class Transfers
    {
        private long _count;
        private long _bytes;
        private double _ms;

        public double MeanMs => _count == 0 ? 0 : _ms / _count;

        public double BytesPerSecond => _ms <= 0 ? 0 : _bytes / (_ms / 1000);

        public void Add(TimeSpan elapsed, long bytes)
        {
            _count++;
            _bytes += bytes;
            _ms += elapsed.TotalMilliseconds;
        }
    }
}

/// <summary>One app's view of its runner's <see cref="PipelineCache"/>.</summary>
public sealed class AppPipelineCache
{
    private readonly PipelineCache _cache;
    private readonly string _app;

    internal AppPipelineCache(PipelineCache cache, string app) => (_cache, _app) = (cache, app);

    /// <summary>The app's pipelines on the device, most recently used first.</summary>
    public IReadOnlyList<string> Keys => _cache.ReadyKeys(_app);

    /// <summary>The app's pipelines being loaded now (from the store, or promoted from host memory).</summary>
    public IReadOnlyList<string> Loading => _cache.LoadingKeys(_app);

    /// <summary>The app's pipelines held in host memory (the host tier), most recently used first.</summary>
    public IReadOnlyList<string> Warm => _cache.WarmKeys(_app);

    /// <summary>
    /// The pipeline for <paramref name="key"/>, loading it with <paramref name="load"/> (which should run on the
    /// device thread) if it is not held, or promoting it if it is warm; hold the lease while using the pipeline so it is
    /// not evicted.
    /// </summary>
    /// <exception cref="PipelineCacheException">It cannot fit the budget.</exception>
    public Task<PipelineLease<T>> AcquireAsync<T>(string key, long sizeBytes, Func<Task<T>> load, CancellationToken cancellationToken)
        where T : class, IDisposable =>
        _cache.AcquireAsync(_app, key, sizeBytes, load, cancellationToken);

    /// <summary>Drops <paramref name="key"/> from the cache (its model is gone), so it is no longer held or reported.</summary>
    public void Forget(string key) => _cache.Forget(_app, key);
}

/// <summary>A pipeline in use; dispose to let the cache evict it again.</summary>
public sealed class PipelineLease<T> : IPipelineLease
    where T : class
{
    private readonly PipelineCache _cache;
    private readonly PipelineCache.Entry _entry;
    private int _released;

    internal PipelineLease(PipelineCache cache, PipelineCache.Entry entry, T value) => (_cache, _entry, Value) = (cache, entry, value);

    /// <summary>The pipeline.</summary>
    public T Value { get; }

    /// <inheritdoc />
    public string Key => _entry.Key;

    /// <inheritdoc />
    public bool IsReleased => Volatile.Read(ref _released) == 1;

    /// <inheritdoc />
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _released, 1) == 0)
        {
            _cache.Release(_entry);
        }
    }
}

/// <summary>A lease on a cached pipeline, whatever its type.</summary>
public interface IPipelineLease : IDisposable
{
    /// <summary>The pipeline's key.</summary>
    string Key { get; }

    /// <summary>Whether the lease has been given back.</summary>
    bool IsReleased { get; }
}

/// <summary>
/// The leases taken while one request runs (in its async flow), so the runner can give back any that the app forgot
/// to dispose: a leaked lease would pin its pipeline in the cache for good and starve every later load.
/// </summary>
public sealed class PipelineLeaseScope : IDisposable
{
    private static readonly AsyncLocal<PipelineLeaseScope?> Current = new();
    private readonly PipelineLeaseScope? _outer;
    private readonly System.Collections.Concurrent.ConcurrentQueue<IPipelineLease> _leases = new();

    private PipelineLeaseScope(PipelineLeaseScope? outer) => _outer = outer;

    /// <summary>Starts tracking the leases taken from here on in this async flow.</summary>
    public static PipelineLeaseScope Begin() => Current.Value = new PipelineLeaseScope(Current.Value);

    /// <summary>Gives back every lease of this scope still held; returns their keys.</summary>
    public IReadOnlyList<string> ReleaseForgotten()
    {
        var keys = new List<string>();
        while (_leases.TryDequeue(out var lease))
        {
            if (!lease.IsReleased)
            {
                keys.Add(lease.Key);
                lease.Dispose();
            }
        }

        return keys;
    }

    /// <summary>Stops tracking (leases still held stay held).</summary>
    public void Dispose() => Current.Value = _outer;

    internal static void Track(IPipelineLease lease) => Current.Value?._leases.Enqueue(lease);
}
