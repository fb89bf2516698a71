using FalHints.Client.Contracts;
using FalHints.Router.Hints;
using FalHints.Router.Placement;
using FalHints.Router.Queue;

namespace FalHints.Tests.Support;

/// <summary>Builds hint indexes and tickets for placement tests.</summary>
public static class Runners
{
    public static readonly DateTimeOffset T0 = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static long _sequence;

    /// <summary>The sequence of the last event <see cref="Event"/> made: a runner taking a request now answers with it.</summary>
    public static long LastSequence => Interlocked.Read(ref _sequence);

    public static HintsEvent Event(string runner, int capacity = 1, HintsEventKind kind = HintsEventKind.Response,
        string[]? hints = null, string[]? loading = null, CacheUsage? cache = null, AppRouting? routing = null) =>
        new(runner, runner.Split('/')[0], "cpu:0", "o/app", [.. hints ?? []], 0, capacity, Interlocked.Increment(ref _sequence),
            T0, kind, [.. loading ?? []], cache ?? CacheUsage.None, routing);

    /// <summary>Adds a runner to <paramref name="index"/> holding <paramref name="hints"/>, with <paramref name="inFlight"/> requests running.</summary>
    public static HintIndex With(this HintIndex index, string runner, int inFlight = 0, int capacity = 1, bool draining = false, params string[] hints)
    {
        index.Apply(Event(runner, capacity, draining ? HintsEventKind.Draining : HintsEventKind.Response, hints), T0);
        for (var i = 0; i < inFlight; i++)
        {
            index.MarkDispatched(runner, null);
        }

        return index;
    }

    /// <summary>What <paramref name="policy"/> does with <paramref name="tickets"/> waiting (oldest first) on <paramref name="index"/>'s runners: the runner of its first choice, or null.</summary>
    public static PlacementChoice? Decide(this IPlacementPolicy policy, HintIndex index, params RequestTicket[] tickets) => Decide(policy, index, T0, tickets);

    /// <summary>As <see cref="Decide(IPlacementPolicy, HintIndex, RequestTicket[])"/> at <paramref name="now"/>.</summary>
    public static PlacementChoice? Decide(this IPlacementPolicy policy, HintIndex index, DateTimeOffset now, params RequestTicket[] tickets)
    {
        var queue = new RequestQueue();
        foreach (var ticket in tickets)
        {
            queue.Add(ticket);
        }

        var cost = new ReportedLoadCost();
        cost.Observe(index);
        return policy.Next(new PlacementContext(now, index, queue, cost, 0, DispatcherOptions.Default.HeadBypassLimit));
    }

    public static RequestTicket Ticket(string? hint, string id = "", RequestPriority priority = RequestPriority.Normal,
        DateTimeOffset? at = null, TimeSpan? startTimeout = null, bool noRetry = false, string[]? moreHints = null) =>
        new(new InferenceRequest(id.Length > 0 ? id : Guid.NewGuid().ToString("N"), "o/app", "{}", hint, "/",
            new SubmitOptions(priority, startTimeout, noRetry, moreHints is null ? default : [.. moreHints])), at ?? T0);
}
