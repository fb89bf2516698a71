using System.IO.Hashing;
using System.Text;
using FalHints.Router.Hints;

namespace FalHints.Router.Placement;

/// <summary>
/// Consistent hashing with bounded loads (Mirrokni, Thorup and Zadimoghaddam) as HAProxy does it (src/lb_chash.c):
/// each runner has 16 points on the ring (<c>BE_WEIGHT_SCALE</c> x weight 1); a hint goes to the point closest to its
/// hash (<c>chash_get_server_hash</c>), then clockwise to the first runner that is eligible
/// (<c>chash_server_is_eligible</c>: served &lt; slots, slots the runner's share of ceil((served in total + 1) x
/// <see cref="BalanceFactor"/> / 100), at least 1). Requests beyond a runner's connections queue at that runner
/// (HAProxy's server queue). A request without a hint goes round-robin to a runner with a free slot and an empty
/// queue (<c>chash_get_next_server</c>), and waits in the router's queue when there is none.
/// </summary>
public sealed class HaproxyConsistentHashPolicy : IPlacementPolicy
{
    /// <summary><c>hash-balance-factor</c>: 125, the paper's 1.25.</summary>
    public const int BalanceFactor = 125;

    private const int PointsPerRunner = 16;
    private readonly Ring _ring = new(PointsPerRunner);
    private int _last = -1;

    /// <inheritdoc />
    public string Name => PlacementPolicies.ConsistentHashHaproxy;

    /// <inheritdoc />
    public int Admits(RunnerState runner) => int.MaxValue;

    /// <inheritdoc />
    public PlacementChoice? Next(PlacementContext context)
    {
        if (context.Queue.Head is not { } head)
        {
            return null;
        }

        var runners = _ring.Sync(context.Runners);
        if (runners.Count == 0)
        {
            return null;
        }

        if (head.Request.Hint is not { } hint)
        {
            // Round-robin over the ring, skipping saturated runners.
            for (var i = 1; i <= _ring.Count; i++)
            {
                var at = (_last + i) % _ring.Count;
                if (runners[_ring.RunnerAt(at)] is { IsFree: true, InFlight: var inFlight } runner && inFlight < runner.Capacity)
                {
                    _last = at;
                    return PlacementChoice.Of(head, runner);
                }
            }

            return null;
        }

        var served = runners.Sum(Served);
        var point = _ring.Closest(Ring.Hash(hint));
        for (var i = 0; i < _ring.Count; i++)
        {
            var index = _ring.RunnerAt((point + i) % _ring.Count);
            var runner = runners[index];
            if (Usable(runner) && Served(runner) < Slots(index, runners.Count, served))
            {
                return PlacementChoice.Of(head, runner);
            }
        }

        // HAProxy's walk stops after one turn and keeps the closest runner.
        var fallback = runners[_ring.RunnerAt(point)];
        return Usable(fallback) ? PlacementChoice.Of(head, fallback) : null;
    }

    private static bool Usable(RunnerState runner) => runner.Confirmed && !runner.Draining;

    // Connections being served: HAProxy counts queued requests apart (nbpend).
    private static int Served(RunnerState runner) => Math.Min(runner.InFlight, Math.Max(1, runner.Capacity));

    /// <summary>The runner's slots with equal weights, distributing the remainder by cumulative weight as HAProxy does.</summary>
    private static long Slots(int index, int count, int served)
    {
        const long Weight = 16;
        var total = count * Weight;
        long totalSlots = ((served + 1L) * BalanceFactor + 99) / 100;
        var perWeight = totalSlots / total;
        var remainder = totalSlots % total;
        var cumulative = index * Weight;
        var slots = Weight * perWeight + ((cumulative + Weight) * remainder / total) - (cumulative * remainder / total);
        return Math.Max(1, slots);
    }
}

/// <summary>
/// Consistent hashing with bounded loads as Envoy does it (source/extensions/load_balancing_policies/common/
/// thread_aware_lb_impl.cc, <c>BoundedLoadHashingLoadBalancer::chooseHost</c>): the ring host for the hint's hash
/// (a ring of 1,024 points, the ring hash default) unless it is overloaded (<c>hostOverloadFactor</c>: active requests
/// over slots above 1, slots ceil(ceil((active in total + 1) x <see cref="BalanceFactor"/> / 100) / hosts), at least
/// 1); then hosts in a random order seeded by the hash, the first not overloaded, else the least overloaded. Envoy
/// counts every request sent and not answered, so requests queue at the host. A request without a hint gets a random
/// hash.
/// </summary>
public sealed class EnvoyConsistentHashPolicy(IRandomSource random) : IPlacementPolicy
{
    /// <summary><c>hash_balance_factor</c>: 125, the paper's 1.25.</summary>
    public const int BalanceFactor = 125;

    private const int RingSize = 1024;
    private readonly Ring _ring = new(0);

    /// <inheritdoc />
    public string Name => PlacementPolicies.ConsistentHashEnvoy;

    /// <inheritdoc />
    public int Admits(RunnerState runner) => int.MaxValue;

    /// <inheritdoc />
    public PlacementChoice? Next(PlacementContext context)
    {
        if (context.Queue.Head is not { } head)
        {
            return null;
        }

        var hosts = _ring.Sync(context.Runners, Math.Max(1, RingSize / Math.Max(1, context.Runners.All.Count)));
        if (hosts.Count == 0)
        {
            return null;
        }

        var hash = head.Request.Hint is { } hint ? Ring.Hash(hint) : (ulong)random.Next(int.MaxValue) * 2654435761UL;
        var active = hosts.Sum(h => h.InFlight);
        var host = hosts[_ring.RunnerAt(_ring.FirstAtOrAfter(hash))];
        var factor = Overload(host, active, hosts.Count);
        if (factor <= 1.0 && Usable(host))
        {
            return PlacementChoice.Of(head, host);
        }

        var order = Enumerable.Range(0, hosts.Count).ToArray();
        var shuffle = new Random(unchecked((int)hash ^ (int)(hash >> 32)));
        RunnerState? least = Usable(host) ? host : null;
        var leastFactor = least is null ? double.MaxValue : factor;
        for (var i = 0; i < hosts.Count; i++)
        {
            var j = shuffle.Next(hosts.Count - i);
            (order[i], order[i + j]) = (order[i + j], order[i]);
            var alternative = hosts[order[i]];
            if (ReferenceEquals(alternative, host) || !Usable(alternative))
            {
                continue;
            }

            var altFactor = Overload(alternative, active, hosts.Count);
            if (altFactor <= 1.0)
            {
                return PlacementChoice.Of(head, alternative);
            }

            if (altFactor < leastFactor)
            {
                (least, leastFactor) = (alternative, altFactor);
            }
        }

        return least is null ? null : PlacementChoice.Of(head, least);
    }

    private static bool Usable(RunnerState runner) => runner.Confirmed && !runner.Draining;

    private static double Overload(RunnerState host, int active, int hosts)
    {
        long totalSlots = ((active + 1L) * BalanceFactor + 99) / 100;
        var slots = Math.Max((long)Math.Ceiling(totalSlots / (double)hosts), 1);
        return host.InFlight / (double)slots;
    }
}

/// <summary>A hash ring of runners, rebuilt when the runners change; points sorted by hash.</summary>
internal sealed class Ring(int pointsPerRunner)
{
    private readonly List<(ulong Point, int Runner)> _points = [];
    private List<RunnerState> _runners = [];
    private string[] _ids = [];

    /// <summary>Points on the ring.</summary>
    public int Count => _points.Count;

    /// <summary>The runners by index, ordered by id; the ring is rebuilt when they change.</summary>
    public List<RunnerState> Sync(IRunnerIndex index, int points = 0)
    {
        var ordered = index.All.OrderBy(r => r.RunnerId, StringComparer.Ordinal).ToList();
        if (!ordered.Select(r => r.RunnerId).SequenceEqual(_ids, StringComparer.Ordinal))
        {
            _ids = [.. ordered.Select(r => r.RunnerId)];
            _points.Clear();
            var perRunner = points > 0 ? points : pointsPerRunner;
            for (var r = 0; r < ordered.Count; r++)
            {
                for (var p = 0; p < perRunner; p++)
                {
                    _points.Add((Hash($"{ordered[r].RunnerId}_{p}"), r));
                }
            }

            _points.Sort((a, b) => a.Point.CompareTo(b.Point));
        }

        _runners = ordered;
        return _runners;
    }

    /// <summary>The runner index of the point at <paramref name="position"/>.</summary>
    public int RunnerAt(int position) => _points[position].Runner;

    /// <summary>The position of the first point at or after <paramref name="hash"/>, wrapping around.</summary>
    public int FirstAtOrAfter(ulong hash)
    {
        var lo = 0;
        var hi = _points.Count;
        while (lo < hi)
        {
            var mid = (lo + hi) / 2;
            if (_points[mid].Point < hash)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }

        return lo % _points.Count;
    }

    /// <summary>The position of the point closest to <paramref name="hash"/>: the next one or the one before, the one before on a tie.</summary>
    public int Closest(ulong hash)
    {
        var next = FirstAtOrAfter(hash);
        var prev = (next - 1 + _points.Count) % _points.Count;
        var toPrev = hash - _points[prev].Point;
        var toNext = _points[next].Point - hash;
        return toPrev <= toNext ? prev : next;
    }

    /// <summary>A stable 64-bit hash of <paramref name="text"/>.</summary>
    public static ulong Hash(string text) => XxHash64.HashToUInt64(Encoding.UTF8.GetBytes(text));
}
