using FalHints.Router.Placement;
using FalHints.Router.Queue;

namespace FalHints.Router.Routing;

/// <summary>Router and request settings (section <c>FalHints:Router</c>).</summary>
public sealed class RouterOptions
{
    /// <summary>The configuration section.</summary>
    public const string SectionName = "FalHints:Router";

    /// <summary>The placement policy: a built-in one (<see cref="PlacementPolicies.Names"/>) or one registered with <c>AddPlacementPolicy</c>; default <c>HintAffinity</c>.</summary>
    public string Policy { get; set; } = PlacementPolicies.HintAffinity;

    /// <summary>Seed of the randomness of randomised policies; unset, a new seed per router activation.</summary>
    public int? RandomSeed { get; set; }

    /// <summary>
    /// How long a request waits for the first runner of its app to announce itself before it fails with
    /// <c>app_not_found</c>. Keep it above the runners' heartbeat interval.
    /// </summary>
    public TimeSpan DiscoveryTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Tries per request when runners die (not when the app itself reports an error); fal's default is 10.</summary>
    public int MaxAttempts { get; set; } = DispatcherOptions.Default.MaxAttempts;

    /// <summary>
    /// How many younger requests may start while a request is the oldest of its priority class before FalHints'
    /// policies start it first: on the next free runner holding its hint, or, when no runner holds it, on the next free
    /// runner. Bounds how long a request is passed over without costing throughput under sustained overload: only a
    /// request whose model nobody holds is forced onto a runner that must load it.
    /// </summary>
    public int HeadBypassLimit { get; set; } = DispatcherOptions.Default.HeadBypassLimit;

    /// <summary>
    /// Whether the placement policy may ask runners to load models in the background (copies of models in demand, into
    /// memory the runners do not use), default on. A runner is busy while it loads; no request waits for such a load.
    /// An app that refuses a background load gets no more from its router until the router restarts.
    /// </summary>
    public bool PolicyPrewarms { get; set; } = true;

    /// <summary>Requests an app may have waiting; more are refused with <c>queue_full</c>.</summary>
    public int MaxQueueLength { get; set; } = DispatcherOptions.Default.MaxQueueLength;

    /// <summary>A runner not heard from for this long is dropped and its requests retried (keep it above a few heartbeats).</summary>
    public TimeSpan RunnerTimeout { get; set; } = TimeSpan.FromSeconds(35);

    /// <summary>How often the router checks start deadlines, runner liveness and app discovery.</summary>
    public TimeSpan SweepInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How long a request runs before its router asks the runner whether it still has it, and how often after that. A
    /// runner that lost a request, or finished it but could not report back, is caught this way: the request is
    /// retried, or, if it did complete, the runner's slot is freed.
    /// </summary>
    public TimeSpan InFlightCheckInterval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>How often an unfinished request reminds its router of itself, so a restarted router rebuilds its queue.</summary>
    public TimeSpan ResumeInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How long a completed request's status and result are kept.</summary>
    public TimeSpan ResultRetention { get; set; } = TimeSpan.FromHours(1);

    /// <summary>The dispatcher's share of these settings.</summary>
    public DispatcherOptions ToDispatcherOptions() => new(HeadBypassLimit, MaxQueueLength, MaxAttempts);
}
