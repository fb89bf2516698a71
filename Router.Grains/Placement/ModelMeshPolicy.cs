using FalHints.Client.Contracts;
using FalHints.Router.Hints;

namespace FalHints.Router.Placement;

/// <summary>
/// KServe ModelMesh as its source behaves (kserve/modelmesh, src/main/java/com/ibm/watson/modelmesh/ModelMesh.java).
/// <c>invokeModel</c> forwards each request at once to a copy of its model that is loaded or loading; the copy is
/// chosen by <c>ForwardingLB.getNext</c>: among loaded copies the instance with the fewest requests in use, then the
/// least recently used; with only copies still loading, the one whose load started first. The request queues at that
/// copy, which admits up to max(16, 8 x concurrency) requests (<c>MaxConcCacheEntry.afterLoad</c>, <c>allWaiting</c>).
/// Only when no copy exists or every copy refuses is a new copy placed, by <c>CacheMissForwardingLB.getNext</c>:
/// instances in <c>PLACEMENT_ORDER</c> (not full first; both full: the one whose least recently used model is oldest;
/// then fewest models, then most space left), a shortlist of those close to the best, busy instances dropped, one at
/// random. Further copies come from <c>rateTrackingTask</c> every 10 s: a model above 2,000 requests per minute at a
/// copy gets rpm / 2,000 more, and a single-copy model used regularly (again 7 to 40 minutes after an earlier use) gets
/// a second one while the cluster has 10% free. Those copies load in the background (<c>ensureLoadedInternalAsync</c>),
/// on a free instance chosen as for a cache miss; where the app refuses background loads, with the model's next request.
/// </summary>
public sealed class ModelMeshPolicy(IRandomSource random) : IPlacementPolicy
{
    /// <summary><c>RATE_CHECK_INTERVAL_MS</c>.</summary>
    public static readonly TimeSpan RateCheckInterval = TimeSpan.FromSeconds(10);

    /// <summary><c>DEFAULT_SCALEUP_RPM</c>.</summary>
    public const int ScaleUpRpm = 2000;

    // ModelMesh holds requests it cannot place yet only when every instance refuses; look no deeper than this for one it can.
    private const int ScanDepth = 256;
    private const int SecondCopyMaxAgeIterations = 2400 / 10;
    private const int SecondCopyMinAgeIterations = 420 / 10;

    private readonly Dictionary<(string Runner, string Hint), DateTimeOffset> _loadStarted = [];
    private readonly Dictionary<(string Runner, string Hint), int> _intervalCounts = [];
    private readonly Dictionary<string, (int Earlier, int Last)> _usage = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _copiesWanted = new(StringComparer.Ordinal);
    private readonly Dictionary<string, DateTimeOffset> _lastCopyLoad = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Queue<DateTimeOffset>> _recentRequests = new(StringComparer.Ordinal);
    private DateTimeOffset? _lastCheck;
    private int _iteration;

    /// <inheritdoc />
    public string Name => PlacementPolicies.ModelMesh;

    /// <summary>Requests one copy admits: max(16, 8 x its concurrency).</summary>
    public static int CopyLimit(RunnerState runner) => Math.Max(16, 8 * Math.Max(1, runner.Capacity));

    /// <inheritdoc />
    public int Admits(RunnerState runner) => int.MaxValue;

    /// <inheritdoc />
    public PlacementChoice? Next(PlacementContext context)
    {
        CheckRates(context);
        var scanned = 0;
        foreach (var ticket in context.Queue.HeadClass)
        {
            if (scanned++ >= ScanDepth)
            {
                break;
            }

            if (Place(ticket, context) is { } runner)
            {
                Record(ticket, runner, context.Now);
                return PlacementChoice.Of(ticket, runner);
            }
        }

        return null;
    }

    /// <inheritdoc />
    public PrewarmChoice? Prewarm(PlacementContext context)
    {
        CheckRates(context);
        foreach (var model in _copiesWanted.Where(e => e.Value > 0).Select(e => e.Key).Order(StringComparer.Ordinal))
        {
            var candidates = context.Runners.Free.Where(r => !r.Holds(model)).OrderBy(r => r.RunnerId, StringComparer.Ordinal).ToList();
            if (CacheMiss(candidates, context.Now, lastUsedRecently: true) is { } copy)
            {
                _copiesWanted[model]--;
                _lastCopyLoad[model] = context.Now;
                _loadStarted[(copy.RunnerId, model)] = context.Now;
                return PrewarmChoice.Of(model, copy);
            }
        }

        return null;
    }

    private RunnerState? Place(RequestTicket ticket, PlacementContext context)
    {
        var instances = context.Runners.All.Where(r => r.Confirmed && !r.Draining).OrderBy(r => r.RunnerId, StringComparer.Ordinal).ToList();
        if (ticket.Request.Hint is not { } model)
        {
            return CacheMiss(instances, context.Now, lastUsedRecently: true);
        }

        if (!context.CanPrewarm && _copiesWanted.GetValueOrDefault(model) > 0 && CacheMiss([.. instances.Where(r => !r.Holds(model))], context.Now, lastUsedRecently: true) is { } copy)
        {
            _copiesWanted[model]--;
            _lastCopyLoad[model] = context.Now;
            return copy;
        }

        return Forward(model, instances, context) ?? CacheMiss([.. instances.Where(r => !r.Holds(model))], context.Now, lastUsedRecently: true);
    }

    /// <summary><c>ForwardingLB.getNext</c>: loaded copies by fewest in use then least recently used; else the copy whose load started first.</summary>
    private RunnerState? Forward(string model, List<RunnerState> instances, PlacementContext context)
    {
        RunnerState? chosen = null;
        var chosenLoaded = false;
        foreach (var copy in instances.Where(r => r.Holds(model) && r.SentCount(model) < CopyLimit(r)))
        {
            var loaded = copy.Hints.Contains(model);
            if (loaded)
            {
                if (!chosenLoaded || copy.InFlight < chosen!.InFlight || (copy.InFlight == chosen.InFlight && copy.LastUsed < chosen.LastUsed))
                {
                    chosen = copy;
                    chosenLoaded = true;
                }
            }
            else if (!chosenLoaded && (chosen is null || LoadStarted(copy, model) < LoadStarted(chosen, model)))
            {
                chosen = copy;
            }
        }

        return chosen;
    }

    /// <summary><c>CacheMissForwardingLB.getNext</c>: the shortlist of instances near the best in <c>PLACEMENT_ORDER</c>, busy ones dropped, one at random.</summary>
    private RunnerState? CacheMiss(List<RunnerState> candidates, DateTimeOffset now, bool lastUsedRecently)
    {
        if (candidates.Count == 0)
        {
            return null;
        }

        var ordered = candidates.OrderBy(r => r, Comparer<RunnerState>.Create(ComparePlacementOrder)).ToList();
        var best = ordered[0];
        var shortlist = new List<RunnerState> { best };
        foreach (var instance in ordered.Skip(1))
        {
            if (IsFull(best))
            {
                // All full (the order puts non-full first): keep those whose oldest entry is within 45 s of the best's.
                if (Lru(instance) - Lru(best) > 45_000)
                {
                    break;
                }
            }
            else if (IsFull(instance) || Remaining(instance) < Remaining(best) / 4
                || (instance.Hints.Length >= 10 && instance.Hints.Length > best.Hints.Length + (best.Hints.Length >> 2)))
            {
                break;
            }

            shortlist.Add(instance);
        }

        if (shortlist.Count > 1 && lastUsedRecently)
        {
            // A model used in the last 5 s: drop instances above 1.5 x the least busy one's request rate (at least 100 rpm).
            var rpm = shortlist.Select(r => RequestsPerMinute(r, now)).ToList();
            var min = Math.Max(100, rpm.Min());
            var kept = shortlist.Where((r, i) => rpm[i] < 100 || rpm[i] <= 1.5 * min).ToList();
            shortlist = kept.Count > 0 ? kept : shortlist;
        }

        return shortlist[random.Next(shortlist.Count)];
    }

    private int ComparePlacementOrder(RunnerState a, RunnerState b)
    {
        bool fullA = IsFull(a), fullB = IsFull(b);
        if (fullA != fullB)
        {
            return fullA ? 1 : -1;
        }

        if (fullA)
        {
            var oldest = Lru(a).CompareTo(Lru(b));
            if (oldest != 0)
            {
                return oldest;
            }
        }

        var count = a.Hints.Length.CompareTo(b.Hints.Length);
        if (count != 0)
        {
            return count;
        }

        var space = Remaining(b).CompareTo(Remaining(a));
        if (space != 0)
        {
            return space;
        }

        var lru = fullA ? 0 : Lru(a).CompareTo(Lru(b));
        return lru != 0 ? lru : string.CompareOrdinal(a.RunnerId, b.RunnerId);
    }

    private static long Remaining(RunnerState r) => Math.Max(0, r.Cache.BudgetBytes - r.Cache.BytesUsed);

    // Full when less than a mean-sized model of the instance still fits (ModelMesh: remaining below its minimum space unit).
    private static bool IsFull(RunnerState r) => r.Cache.BudgetBytes > 0 && r.Hints.Length > 0 && Remaining(r) < r.Cache.BytesUsed / r.Hints.Length;

    // The dispatch tick of the instance's least recently used model (its cache's LRU time).
    private static long Lru(RunnerState r) => r.Hints.Length == 0 ? 0 : r.Hints.Min(r.HintLastUsed);

    private DateTimeOffset LoadStarted(RunnerState copy, string model) => _loadStarted.GetValueOrDefault((copy.RunnerId, model), DateTimeOffset.MinValue);

    private double RequestsPerMinute(RunnerState r, DateTimeOffset now)
    {
        if (!_recentRequests.TryGetValue(r.RunnerId, out var times))
        {
            return 0;
        }

        while (times.Count > 0 && now - times.Peek() > TimeSpan.FromMinutes(1))
        {
            times.Dequeue();
        }

        return times.Count;
    }

    private void Record(RequestTicket ticket, RunnerState runner, DateTimeOffset now)
    {
        if (!_recentRequests.TryGetValue(runner.RunnerId, out var times))
        {
            _recentRequests[runner.RunnerId] = times = new Queue<DateTimeOffset>();
        }

        times.Enqueue(now);
        if (ticket.Request.Hint is { } model)
        {
            if (!runner.Holds(model))
            {
                _loadStarted[(runner.RunnerId, model)] = now;
            }

            _intervalCounts[(runner.RunnerId, model)] = _intervalCounts.GetValueOrDefault((runner.RunnerId, model)) + 1;
        }
    }

    /// <summary><c>rateTrackingTask</c>, run for every 10 s that passed: scale-up by request rate, and second copies of regularly used models.</summary>
    private void CheckRates(PlacementContext context)
    {
        _lastCheck ??= context.Now;
        while (context.Now - _lastCheck >= RateCheckInterval)
        {
            _lastCheck += RateCheckInterval;
            var lower = _iteration - SecondCopyMaxAgeIterations;
            var upper = _iteration - SecondCopyMinAgeIterations;
            var all = context.Runners.All;
            var budget = all.Sum(r => r.Cache.BudgetBytes);
            var free = all.Sum(r => Remaining(r));
            foreach (var group in _intervalCounts.GroupBy(e => e.Key.Hint))
            {
                var model = group.Key;
                var copies = context.Runners.Holding(model).Count;
                var candidates = all.Count - copies;
                if (copies == 0 || candidates <= 0)
                {
                    continue;
                }

                if (copies == 1)
                {
                    var (i1, i2) = _usage.GetValueOrDefault(model, (int.MinValue / 2, int.MinValue / 2));
                    bool i1InRange = false, i2InRange = false;
                    if (i2 >= lower && i1 <= upper)
                    {
                        i1InRange = i1 >= lower;
                        i2InRange = i2 <= upper;
                    }

                    _usage[model] = (i2InRange || !i1InRange ? i2 : i1, _iteration);
                    if ((i1InRange || i2InRange) && budget > 0 && 10 * free / budget >= 1)
                    {
                        _copiesWanted[model] = Math.Max(_copiesWanted.GetValueOrDefault(model), 1);
                        continue;
                    }
                }

                // A copy loaded within the last interval or two has not shown its effect on the rate yet.
                if (_lastCopyLoad.TryGetValue(model, out var loaded) && context.Now - loaded < 2 * RateCheckInterval)
                {
                    continue;
                }

                var rpm = group.Max(e => e.Value) * (int)(TimeSpan.FromMinutes(1) / RateCheckInterval);
                if (rpm >= ScaleUpRpm)
                {
                    var toLoad = Math.Min(rpm / ScaleUpRpm, candidates);
                    if (toLoad > 2)
                    {
                        toLoad = Math.Min(toLoad, all.Count / 3);
                    }

                    _copiesWanted[model] = Math.Max(_copiesWanted.GetValueOrDefault(model), toLoad);
                }
            }

            _intervalCounts.Clear();
            _iteration++;
        }
    }
}
