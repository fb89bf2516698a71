using FalHints.Client.Contracts;
using FalHints.Router.Hints;

namespace FalHints.Router.Placement;

/// <summary>
/// FalHints' default, fal's routing-hints contract made precise:
/// <list type="number">
/// <item>A free runner holding the request's hint (exact, ordinal) is preferred: the least loaded, then the one
/// that served this hint most recently. With several hints (most specific first) the earliest matched hint wins.</item>
/// <item>Otherwise any free runner, at once: runners holding nothing first (they match anything), then those whose
/// eviction costs least (fewest hints, then least recently used), then the least loaded.</item>
/// <item>No free runner: no decision; the request waits in the queue.</item>
/// </list>
/// With <see cref="CostAware"/> (opt-in), a request whose hint is held only by busy runners waits for one of them
/// when it is expected to free up sooner than a model load elsewhere would take.
/// </summary>
public sealed class HintAffinityPolicy(bool costAware = false) : IPlacementPolicy
{
    /// <summary>Whether to wait for a busy holder when that is expected to be faster than a load.</summary>
    public bool CostAware { get; } = costAware;

    /// <inheritdoc />
    public string Name => CostAware ? PlacementPolicies.HintAffinityCostAware : PlacementPolicies.HintAffinity;

    /// <inheritdoc />
    public bool FreedRunnerTakesHeldRequest => true;

    /// <inheritdoc />
    public PlacementDecision Choose(RequestTicket request, IRunnerIndex runners, DateTimeOffset now)
    {
        foreach (var hint in RequestHints.Of(request))
        {
            if (BestHolder(hint, runners) is { } holder)
            {
                return PlacementDecision.Place(holder, hintHit: true);
            }
        }

        if (runners.Free.Count == 0)
        {
            return PlacementDecision.None;
        }

        if (CostAware && request.Request.Hint is { } wanted && ShouldWaitForHolder(wanted, runners, now - request.AcceptedAt))
        {
            return PlacementDecision.Wait;
        }

        return PlacementDecision.Place(CheapestToRepurpose(runners.Free), hintHit: false);
    }

    /// <summary>The free holder of <paramref name="hint"/> with the fewest requests in flight, then the most recent user of the hint.</summary>
    internal static RunnerState? BestHolder(string hint, IRunnerIndex runners)
    {
        RunnerState? best = null;
        foreach (var runner in runners.Holding(hint))
        {
            if (!runner.IsFree)
            {
                continue;
            }

            if (best is null || CompareHolders(runner, best, hint) < 0)
            {
                best = runner;
            }
        }

        return best;
    }

    /// <summary>The free runner whose repurposing costs least: empty first, then fewest hints, then least recently used, then least loaded.</summary>
    internal static RunnerState CheapestToRepurpose(IReadOnlyCollection<RunnerState> free)
    {
        RunnerState? best = null;
        foreach (var runner in free)
        {
            if (best is null || CompareRepurposeCost(runner, best) < 0)
            {
                best = runner;
            }
        }

        return best!;
    }

    private static int CompareRepurposeCost(RunnerState a, RunnerState b)
    {
        var held = (a.Hints.Length + a.Loading.Length).CompareTo(b.Hints.Length + b.Loading.Length);
        if (held != 0)
        {
            return held;
        }

        var used = a.LastUsed.CompareTo(b.LastUsed);
        if (used != 0)
        {
            return used;
        }

        var load = a.InFlight.CompareTo(b.InFlight);
        return load != 0 ? load : string.CompareOrdinal(a.RunnerId, b.RunnerId);
    }

    /// <summary>Fewer requests in flight first, then the more recent user of the hint, then the lower id (reproducible).</summary>
    private static int CompareHolders(RunnerState a, RunnerState b, string hint)
    {
        var load = a.InFlight.CompareTo(b.InFlight);
        if (load != 0)
        {
            return load;
        }

        var recency = b.HintLastUsed(hint).CompareTo(a.HintLastUsed(hint));
        return recency != 0 ? recency : string.CompareOrdinal(a.RunnerId, b.RunnerId);
    }

    /// <summary>
    /// A busy holder is worth waiting for while the request's whole wait (what it has waited already plus the holder's
    /// mean inference time, as the time left of its current request) stays below a load elsewhere (the app's mean load
    /// time on the runners). Counting the time already waited keeps a hot model from queueing behind a single copy:
    /// once waiting has cost as much as a load, the request goes elsewhere and the model gets a second copy.
    /// </summary>
    private static bool ShouldWaitForHolder(string hint, IRunnerIndex runners, TimeSpan waited)
    {
        var holders = runners.Holding(hint);
        if (holders.Count == 0)
        {
            return false;
        }

        var expectedFree = holders.Where(r => !r.Draining).Select(r => r.MeanInferenceMs * (r.InFlight - r.Capacity + 1)).DefaultIfEmpty(double.MaxValue).Min();
        var loads = runners.All.Where(r => r.Cache.Loads > 0).Select(r => r.Cache.MeanLoadMs).ToList();
        return loads.Count > 0 && waited.TotalMilliseconds + expectedFree < 2 * loads.Average();
    }
}
