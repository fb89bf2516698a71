using FalHints.Client.Contracts;
using FalHints.Router.Hints;
using FalHints.Router.Queue;

namespace FalHints.Router.Placement;

/// <summary>A request to start now, and the runner to send it to.</summary>
public readonly record struct PlacementChoice(RequestTicket Ticket, string RunnerId)
{
    /// <summary>Sends <paramref name="ticket"/> to <paramref name="runner"/>.</summary>
    public static PlacementChoice Of(RequestTicket ticket, RunnerState runner) => new(ticket, runner.RunnerId);
}

/// <summary>A model to load in the background on a free runner, so later requests find a copy there without paying for the load.</summary>
public readonly record struct PrewarmChoice(string Hint, string RunnerId)
{
    /// <summary>Loads <paramref name="hint"/> on <paramref name="runner"/>.</summary>
    public static PrewarmChoice Of(string hint, RunnerState runner) => new(hint, runner.RunnerId);
}

/// <summary>
/// Everything a policy may look at to decide, at one moment: the runners, the queue, the estimated cost of loads, and
/// how often the head of the queue has been passed over. A policy that holds requests back asks to be called again
/// with <see cref="WakeAt"/> (arrivals and completions call it anyway).
/// </summary>
public sealed class PlacementContext(DateTimeOffset now, IRunnerIndex runners, IQueueView queue, ILoadCostEstimator loadCost, int headBypasses, int bypassLimit,
    bool canPrewarm = false)
{
    /// <summary>The time of the decision.</summary>
    public DateTimeOffset Now { get; } = now;

    /// <summary>The runners.</summary>
    public IRunnerIndex Runners { get; } = runners;

    /// <summary>The waiting requests.</summary>
    public IQueueView Queue { get; } = queue;

    /// <summary>What loading a hint on a runner is expected to cost.</summary>
    public ILoadCostEstimator LoadCost { get; } = loadCost;

    /// <summary>Requests of the head's class started since the current head became the head, while it kept waiting.</summary>
    public int HeadBypasses { get; internal set; } = headBypasses;

    /// <summary>How often the head may be passed over (<see cref="DispatcherOptions.HeadBypassLimit"/>).</summary>
    public int BypassLimit { get; } = bypassLimit;

    /// <summary>True when the router can ask runners to load a model in the background (<see cref="IPlacementPolicy.Prewarm"/>); false when the app refused it.</summary>
    public bool CanPrewarm { get; } = canPrewarm;

    /// <summary>
    /// True when the head has been passed over as often as it may: policies that give the starvation guarantee start it
    /// first on a free runner holding its hint, or, when no runner holds it, on the next free runner.
    /// </summary>
    public bool HeadDue => HeadBypasses >= BypassLimit;

    /// <summary>The earliest time a policy asked to be called again, if any.</summary>
    public DateTimeOffset? Wake { get; private set; }

    /// <summary>Asks to be called again at <paramref name="when"/> even if nothing else happens.</summary>
    public void WakeAt(DateTimeOffset when)
    {
        if (Wake is not { } wake || when < wake)
        {
            Wake = when;
        }
    }
}

/// <summary>
/// A placement policy: it owns every choice of the router for one app (which queued request starts next, on which
/// runner, and whether to wait), through <see cref="Next"/>. Pure and synchronous: no clock reads (the time is in the
/// context), randomness injected, no Orleans types, so the router grain and the benchmark simulator run the same code.
/// Register one by name (<see cref="PlacementPolicyCatalog"/>); the dispatcher needs no change.
/// </summary>
public interface IPlacementPolicy
{
    /// <summary>The name the policy is configured by.</summary>
    string Name { get; }

    /// <summary>
    /// The next request to start and its runner, or null to start nothing more now. The dispatcher starts it, then
    /// asks again, until null. The request must be in the head's priority class, and the runner must admit it.
    /// </summary>
    PlacementChoice? Next(PlacementContext context);

    /// <summary>
    /// How many requests <paramref name="runner"/> may hold at once, running and waiting at the runner. fal's
    /// contract (and the default): its capacity, so requests wait only in the router's queue. Peers that queue at
    /// replicas admit more.
    /// </summary>
    int Admits(RunnerState runner) => runner.Capacity;

    /// <summary>
    /// A copy to load in the background, or null (the default: none). Asked, while <see cref="PlacementContext.CanPrewarm"/>,
    /// once <see cref="Next"/> has nothing more to start, and again until null. The runner must be free and must not hold
    /// the hint yet; it counts one request in flight while it loads, and holds the hint from then on. No request waits
    /// for a prewarm: a request whose model no runner holds still goes where <see cref="Next"/> sends it.
    /// </summary>
    PrewarmChoice? Prewarm(PlacementContext context) => null;
}
