using System.IO.Hashing;
using System.Text;
using FalHints.Client.Contracts;
using FalHints.Router.Hints;

namespace FalHints.Router.Placement;

/// <summary>
/// fal's routing hints as its documentation states them: a free runner whose hints contain the request's hint,
/// else any available runner, chosen at random among the candidates (the documentation names no tie-break).
/// </summary>
public sealed class FalDocumentedPolicy(IRandomSource random) : IPlacementPolicy
{
    /// <inheritdoc />
    public string Name => PlacementPolicies.FalDocumented;

    /// <inheritdoc />
    public bool FreedRunnerTakesHeldRequest => false;

    /// <inheritdoc />
    public PlacementDecision Choose(RequestTicket request, IRunnerIndex runners, DateTimeOffset now)
    {
        if (request.Request.Hint is { } hint && PickFree(runners.Holding(hint), random) is { } holder)
        {
            return PlacementDecision.Place(holder, hintHit: true);
        }

        return PickFree(runners.Free, random) is { } any ? PlacementDecision.Place(any, hintHit: false) : PlacementDecision.None;
    }

    internal static RunnerState? PickFree(IReadOnlyCollection<RunnerState> candidates, IRandomSource random)
    {
        var free = candidates.Where(r => r.IsFree).OrderBy(r => r.RunnerId, StringComparer.Ordinal).ToList();
        return free.Count == 0 ? null : free[random.Next(free.Count)];
    }
}

/// <summary>
/// Ray Serve's model multiplexing as its documentation and code describe it: replicas report loaded and loading model
/// ids; a request prefers replicas holding its model, taking the less loaded of two random holders (power of two
/// choices), and keeps waiting for a holder for up to <see cref="HolderWindow"/>; after that, or with no holder at all,
/// it goes to the replica holding the fewest models.
/// </summary>
public sealed class RayServePolicy(IRandomSource random) : IPlacementPolicy
{
    /// <summary>How long a request waits for a replica holding its model.</summary>
    public static readonly TimeSpan HolderWindow = TimeSpan.FromSeconds(1);

    /// <inheritdoc />
    public string Name => PlacementPolicies.RayServe;

    /// <inheritdoc />
    public bool FreedRunnerTakesHeldRequest => true;

    /// <inheritdoc />
    public PlacementDecision Choose(RequestTicket request, IRunnerIndex runners, DateTimeOffset now)
    {
        if (request.Request.Hint is { } hint)
        {
            var holders = runners.Holding(hint);
            var free = holders.Where(r => r.IsFree).OrderBy(r => r.RunnerId, StringComparer.Ordinal).ToList();
            if (free.Count > 0)
            {
                var a = free[random.Next(free.Count)];
                var b = free[random.Next(free.Count)];
                return PlacementDecision.Place(a.InFlight <= b.InFlight ? a : b, hintHit: true);
            }

            if (holders.Count > 0 && now - request.AcceptedAt < HolderWindow)
            {
                return runners.Free.Count == 0 ? PlacementDecision.None : PlacementDecision.Wait;
            }
        }

        var fewest = runners.Free.OrderBy(r => r.Hints.Length + r.Loading.Length).ThenBy(r => r.RunnerId, StringComparer.Ordinal).FirstOrDefault();
        return fewest is null ? PlacementDecision.None : PlacementDecision.Place(fewest, hintHit: false);
    }
}

/// <summary>
/// KServe ModelMesh's placement as its documentation and code describe it: among instances holding the model, the one
/// with the fewest requests in flight, then the least recently used (spreading load over copies); a miss goes to the
/// least-full instance (fewest cache bytes used), then the one whose least recently used entry is oldest.
/// </summary>
public sealed class ModelMeshPolicy : IPlacementPolicy
{
    /// <inheritdoc />
    public string Name => PlacementPolicies.ModelMesh;

    /// <inheritdoc />
    public bool FreedRunnerTakesHeldRequest => false;

    /// <inheritdoc />
    public PlacementDecision Choose(RequestTicket request, IRunnerIndex runners, DateTimeOffset now)
    {
        if (request.Request.Hint is { } hint
            && runners.Holding(hint).Where(r => r.IsFree).OrderBy(r => r.InFlight).ThenBy(r => r.HintLastUsed(hint)).ThenBy(r => r.RunnerId, StringComparer.Ordinal).FirstOrDefault() is { } holder)
        {
            return PlacementDecision.Place(holder, hintHit: true);
        }

        var target = runners.Free.OrderBy(r => r.Cache.BytesUsed).ThenBy(r => r.LastUsed).ThenBy(r => r.RunnerId, StringComparer.Ordinal).FirstOrDefault();
        return target is null ? PlacementDecision.None : PlacementDecision.Place(target, hintHit: false);
    }
}

/// <summary>
/// Consistent hashing with bounded loads: each hint maps to a point on a ring of runners (with virtual nodes) and
/// goes to the first runner clockwise that is free and not above <see cref="LoadFactor"/> times the mean load;
/// requests without a hint go to the least loaded runner.
/// </summary>
public sealed class ConsistentHashPolicy : IPlacementPolicy
{
    /// <summary>How far above the mean load a runner may be and still take its share.</summary>
    public const double LoadFactor = 1.25;

    private const int VirtualNodes = 64;
    private readonly List<(ulong Point, string RunnerId)> _ring = [];
    private readonly HashSet<string> _members = new(StringComparer.Ordinal);

    /// <inheritdoc />
    public string Name => PlacementPolicies.ConsistentHash;

    /// <inheritdoc />
    public bool FreedRunnerTakesHeldRequest => false;

    /// <inheritdoc />
    public PlacementDecision Choose(RequestTicket request, IRunnerIndex runners, DateTimeOffset now)
    {
        if (runners.Free.Count == 0)
        {
            return PlacementDecision.None;
        }

        if (request.Request.Hint is not { } hint)
        {
            var least = runners.Free.OrderBy(r => r.InFlight).ThenBy(r => r.RunnerId, StringComparer.Ordinal).First();
            return PlacementDecision.Place(least, hintHit: false);
        }

        Sync(runners);
        var byId = runners.All.ToDictionary(r => r.RunnerId, StringComparer.Ordinal);
        var bound = Math.Max(1.0, LoadFactor * (runners.All.Sum(r => r.InFlight) + 1.0) / runners.All.Count);
        var start = _ring.BinarySearch((Hash(hint), string.Empty), Comparer<(ulong, string)>.Create((a, b) => a.Item1.CompareTo(b.Item1)));
        start = start < 0 ? ~start : start;
        for (var i = 0; i < _ring.Count; i++)
        {
            var runner = byId[_ring[(start + i) % _ring.Count].RunnerId];
            if (runner.IsFree && runner.InFlight + 1 <= bound)
            {
                return PlacementDecision.Place(runner, runner.Holds(hint));
            }
        }

        var fallback = runners.Free.OrderBy(r => r.InFlight).ThenBy(r => r.RunnerId, StringComparer.Ordinal).First();
        return PlacementDecision.Place(fallback, fallback.Holds(hint));
    }

    private void Sync(IRunnerIndex runners)
    {
        if (_members.Count == runners.All.Count && runners.All.All(r => _members.Contains(r.RunnerId)))
        {
            return;
        }

        _members.Clear();
        _ring.Clear();
        foreach (var runner in runners.All)
        {
            _members.Add(runner.RunnerId);
            for (var v = 0; v < VirtualNodes; v++)
            {
                _ring.Add((Hash($"{runner.RunnerId}#{v}"), runner.RunnerId));
            }
        }

        _ring.Sort((a, b) => a.Point.CompareTo(b.Point));
    }

    private static ulong Hash(string text) => XxHash64.HashToUInt64(Encoding.UTF8.GetBytes(text));
}
