using FalHints.Client.Contracts;
using FalHints.Runner.Devices;

namespace FalHints.Runner.Pipelines;

/// <summary>A pipeline that cannot be loaded within the cache's budget; <see cref="Code"/> is <c>insufficient_memory</c>.</summary>
public sealed class PipelineCacheException(string message) : Exception(message)
{
    /// <summary>The request error code.</summary>
    public string Code { get; } = ErrorCodes.InsufficientMemory;
}

/// <summary>
/// The pipelines one runner holds, within a memory budget in bytes. Loads are single-flight (concurrent
/// requests for one key share one load), a load reserves its bytes before it starts, and room is made by
/// evicting the least recently used pipelines that no request is using; evicted pipelines are disposed on
/// the device's thread. A failed load caches nothing. Keys are scoped per app (see <see cref="For"/>).
/// </summary>
public sealed class PipelineCache : IDisposable
{
    private readonly Lock _gate = new();
    private readonly Dictionary<(string App, string Key), Entry> _entries = [];
    private readonly LinkedList<Entry> _recency = new();
    private readonly DeviceExecutor _executor;
    private readonly TimeProvider _time;
    private readonly Action<TimeSpan>? _loaded;
    private long _bytesUsed;
    private long _hits;
    private long _misses;
    private long _loads;
    private long _evictions;
    private double _loadMsTotal;

    /// <summary>
    /// Creates an empty cache of <paramref name="budgetBytes"/> whose pipelines live on <paramref name="executor"/>'s
    /// device; <paramref name="loaded"/> hears how long each completed load took.
    /// </summary>
    public PipelineCache(long budgetBytes, DeviceExecutor executor, TimeProvider time, Action<TimeSpan>? loaded = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(budgetBytes);
        BudgetBytes = budgetBytes;
        _executor = executor;
        _time = time;
        _loaded = loaded;
    }

    /// <summary>The memory budget, in bytes.</summary>
    public long BudgetBytes { get; }

    /// <summary>The cache as one app sees it: its own keys only.</summary>
    public AppPipelineCache For(string appId) => new(this, appId);

    /// <summary>Counters and bytes, for hints events and metrics.</summary>
    public CacheUsage Usage()
    {
        lock (_gate)
        {
            return new CacheUsage(_bytesUsed, BudgetBytes, _hits, _misses, _loads, _evictions, _loads == 0 ? 0 : _loadMsTotal / _loads);
        }
    }

    internal async Task<PipelineLease<T>> AcquireAsync<T>(string app, string key, long sizeBytes, Func<Task<T>> load, CancellationToken cancellationToken)
        where T : class, IDisposable
    {
        ArgumentOutOfRangeException.ThrowIfNegative(sizeBytes);
        Entry entry;
        List<Entry> evicted = [];
        lock (_gate)
        {
            if (_entries.TryGetValue((app, key), out var existing))
            {
                entry = existing;
                entry.Users++;
                _hits++;
                if (entry.Node is not null)
                {
                    _recency.Remove(entry.Node);
                    _recency.AddFirst(entry.Node);
                }
            }
            else
            {
                _misses++;
                MakeRoom(key, sizeBytes, evicted);
                entry = new Entry(app, key, sizeBytes) { Users = 1 };
                _entries.Add((app, key), entry);
                _bytesUsed += sizeBytes;
                entry.Load = LoadAsync(entry, load);
            }
        }

        if (evicted.Count > 0)
        {
            await _executor.RunAsync(() => evicted.ForEach(e => e.Value!.Dispose()), CancellationToken.None).ConfigureAwait(false);
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
            return [.. _entries.Values.Where(e => e.App == app && e.Node is null).Select(e => e.Key).Order(StringComparer.Ordinal)];
        }
    }

    internal void Release(Entry entry)
    {
        lock (_gate)
        {
            entry.Users--;
        }
    }

    /// <summary>Disposes every loaded pipeline; call when the runner stops.</summary>
    public void Dispose()
    {
        List<Entry> loaded;
        lock (_gate)
        {
            loaded = [.. _recency];
            _recency.Clear();
            _entries.Clear();
            _bytesUsed = 0;
        }

        loaded.ForEach(e => e.Value!.Dispose());
    }

    /// <summary>Evicts idle pipelines, least recently used first, until <paramref name="sizeBytes"/> more fit the budget.</summary>
    private void MakeRoom(string key, long sizeBytes, List<Entry> evicted)
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

        for (var node = _recency.Last; node is not null && _bytesUsed + sizeBytes > BudgetBytes;)
        {
            var previous = node.Previous;
            if (node.Value.Users == 0)
            {
                _recency.Remove(node);
                _entries.Remove((node.Value.App, node.Value.Key));
                _bytesUsed -= node.Value.SizeBytes;
                _evictions++;
                evicted.Add(node.Value);
            }

            node = previous;
        }
    }

    private async Task<IDisposable> LoadAsync<T>(Entry entry, Func<Task<T>> load)
        where T : class, IDisposable
    {
        var started = _time.GetTimestamp();
        try
        {
            // Shared by every request waiting for this key, so no single request's cancellation stops it.
            var value = await Task.Run(load, CancellationToken.None).ConfigureAwait(false);
            var elapsed = _time.GetElapsedTime(started);
            lock (_gate)
            {
                entry.Value = value;
                entry.Node = _recency.AddFirst(entry);
                _loads++;
                _loadMsTotal += elapsed.TotalMilliseconds;
            }

            _loaded?.Invoke(elapsed);
            return value;
        }
        catch
        {
            lock (_gate)
            {
                _entries.Remove((entry.App, entry.Key));
                _bytesUsed -= entry.SizeBytes;
            }

            throw;
        }
    }

    internal sealed class Entry(string app, string key, long sizeBytes)
    {
        public string App { get; } = app;

        public string Key { get; } = key;

        public long SizeBytes { get; } = sizeBytes;

        public int Users { get; set; }

        public Task<IDisposable>? Load { get; set; }

        public IDisposable? Value { get; set; }

        public LinkedListNode<Entry>? Node { get; set; }
    }
}

/// <summary>One app's view of its runner's <see cref="PipelineCache"/>.</summary>
public sealed class AppPipelineCache
{
    private readonly PipelineCache _cache;
    private readonly string _app;

    internal AppPipelineCache(PipelineCache cache, string app) => (_cache, _app) = (cache, app);

    /// <summary>The app's loaded pipelines, most recently used first.</summary>
    public IReadOnlyList<string> Keys => _cache.ReadyKeys(_app);

    /// <summary>The app's pipelines being loaded now.</summary>
    public IReadOnlyList<string> Loading => _cache.LoadingKeys(_app);

    /// <summary>
    /// The pipeline for <paramref name="key"/>, loading it with <paramref name="load"/> (which should run on the
    /// device thread) if it is not held; hold the lease while using the pipeline so it is not evicted.
    /// </summary>
    /// <exception cref="PipelineCacheException">It cannot fit the budget.</exception>
    public Task<PipelineLease<T>> AcquireAsync<T>(string key, long sizeBytes, Func<Task<T>> load, CancellationToken cancellationToken)
        where T : class, IDisposable =>
        _cache.AcquireAsync(_app, key, sizeBytes, load, cancellationToken);
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
