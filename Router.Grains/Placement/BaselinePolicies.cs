using FalHints.Router.Hints;

namespace FalHints.Router.Placement;

/// <summary>Randomness for policies, injected so tests can script it.</summary>
public interface IRandomSource
{
    /// <summary>A number in [0, <paramref name="maxExclusive"/>).</summary>
    int Next(int maxExclusive);

    /// <summary>A number in [0, 1).</summary>
    double NextDouble() => Next(int.MaxValue) / (double)int.MaxValue;
}

/// <summary>A seeded <see cref="Random"/>.</summary>
public sealed class SeededRandom(int seed) : IRandomSource
{
    private readonly Random _random = new(seed);

    /// <inheritdoc />
    public int Next(int maxExclusive) => _random.Next(maxExclusive);

    /// <inheritdoc />
    public double NextDouble() => _random.NextDouble();
}

/// <summary>A policy that starts the queue in order (FIFO) on a free runner it picks, ignoring what runners hold.</summary>
public abstract class FifoPolicy : IPlacementPolicy
{
    /// <inheritdoc />
    public abstract string Name { get; }

    /// <inheritdoc />
    public PlacementChoice? Next(PlacementContext context) =>
        context.Runners.Free.Count > 0 && context.Queue.Head is { } head && Pick(context.Runners) is { } runner ? PlacementChoice.Of(head, runner) : null;

    /// <summary>The free runner for the next request (there is one).</summary>
    protected abstract RunnerState? Pick(IRunnerIndex runners);

    /// <summary>The free runners in id order, so choices are reproducible.</summary>
    protected static List<RunnerState> FreeInOrder(IRunnerIndex runners) => [.. runners.Free.OrderBy(r => r.RunnerId, StringComparer.Ordinal)];
}

/// <summary>fal's default without hints: free runners in turn, ignoring what they hold.</summary>
public sealed class RoundRobinPolicy : FifoPolicy
{
    private long _next;

    /// <inheritdoc />
    public override string Name => PlacementPolicies.RoundRobin;

    /// <inheritdoc />
    protected override RunnerState? Pick(IRunnerIndex runners)
    {
        var ordered = runners.All.OrderBy(r => r.RunnerId, StringComparer.Ordinal).ToList();
        for (var i = 0; i < ordered.Count; i++)
        {
            var runner = ordered[(int)((_next + i) % ordered.Count)];
            if (runner.IsFree)
            {
                _next += i + 1;
                return runner;
            }
        }

        return null;
    }
}

/// <summary>A uniformly random free runner, ignoring hints.</summary>
public sealed class RandomPolicy(IRandomSource random) : FifoPolicy
{
    /// <inheritdoc />
    public override string Name => PlacementPolicies.Random;

    /// <inheritdoc />
    protected override RunnerState? Pick(IRunnerIndex runners)
    {
        var free = FreeInOrder(runners);
        return free[random.Next(free.Count)];
    }
}

/// <summary>The free runner with the fewest requests in flight, ignoring hints.</summary>
public sealed class LeastLoadedPolicy : FifoPolicy
{
    /// <inheritdoc />
    public override string Name => PlacementPolicies.LeastLoaded;

    /// <inheritdoc />
    protected override RunnerState? Pick(IRunnerIndex runners) =>
        runners.Free.OrderBy(r => r.InFlight).ThenBy(r => r.RunnerId, StringComparer.Ordinal).FirstOrDefault();
}
