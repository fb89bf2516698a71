using FalHints.Client.Contracts;
using FalHints.Router.Hints;

namespace FalHints.Router.Placement;

/// <summary>Randomness for policies, injected so tests can script it.</summary>
public interface IRandomSource
{
    /// <summary>A number in [0, <paramref name="maxExclusive"/>).</summary>
    int Next(int maxExclusive);
}

/// <summary>A seeded <see cref="Random"/>.</summary>
public sealed class SeededRandom(int seed) : IRandomSource
{
    private readonly Random _random = new(seed);

    /// <inheritdoc />
    public int Next(int maxExclusive) => _random.Next(maxExclusive);
}

/// <summary>fal's default without hints: free runners in turn, ignoring what they hold.</summary>
public sealed class RoundRobinPolicy : IPlacementPolicy
{
    private long _next;

    /// <inheritdoc />
    public string Name => PlacementPolicies.RoundRobin;

    /// <inheritdoc />
    public bool FreedRunnerTakesHeldRequest => false;

    /// <inheritdoc />
    public PlacementDecision Choose(RequestTicket request, IRunnerIndex runners, DateTimeOffset now)
    {
        if (runners.Free.Count == 0)
        {
            return PlacementDecision.None;
        }

        var ordered = runners.All.OrderBy(r => r.RunnerId, StringComparer.Ordinal).ToList();
        for (var i = 0; i < ordered.Count; i++)
        {
            var runner = ordered[(int)((_next + i) % ordered.Count)];
            if (runner.IsFree)
            {
                _next += i + 1;
                return PlacementDecision.Place(runner, request.Request.Hint is { } hint && runner.Holds(hint));
            }
        }

        return PlacementDecision.None;
    }
}

/// <summary>A uniformly random free runner, ignoring hints.</summary>
public sealed class RandomPolicy(IRandomSource random) : IPlacementPolicy
{
    /// <inheritdoc />
    public string Name => PlacementPolicies.Random;

    /// <inheritdoc />
    public bool FreedRunnerTakesHeldRequest => false;

    /// <inheritdoc />
    public PlacementDecision Choose(RequestTicket request, IRunnerIndex runners, DateTimeOffset now)
    {
        if (runners.Free.Count == 0)
        {
            return PlacementDecision.None;
        }

        var free = runners.Free.OrderBy(r => r.RunnerId, StringComparer.Ordinal).ToList();
        var runner = free[random.Next(free.Count)];
        return PlacementDecision.Place(runner, request.Request.Hint is { } hint && runner.Holds(hint));
    }
}

/// <summary>The free runner with the fewest requests in flight, ignoring hints.</summary>
public sealed class LeastLoadedPolicy : IPlacementPolicy
{
    /// <inheritdoc />
    public string Name => PlacementPolicies.LeastLoaded;

    /// <inheritdoc />
    public bool FreedRunnerTakesHeldRequest => false;

    /// <inheritdoc />
    public PlacementDecision Choose(RequestTicket request, IRunnerIndex runners, DateTimeOffset now)
    {
        var runner = runners.Free.OrderBy(r => r.InFlight).ThenBy(r => r.RunnerId, StringComparer.Ordinal).FirstOrDefault();
        return runner is null
            ? PlacementDecision.None
            : PlacementDecision.Place(runner, request.Request.Hint is { } hint && runner.Holds(hint));
    }
}
