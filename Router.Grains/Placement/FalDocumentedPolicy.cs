using FalHints.Router.Hints;

namespace FalHints.Router.Placement;

/// <summary>
/// fal's routing hints as its documentation states them (docs.fal.ai, "routing hints"): a free runner whose hints
/// contain the request's hint, else any available runner, chosen at random among the candidates (the documentation
/// names no tie-break); with no runner free the request queues, and a freed runner takes the oldest (the documentation
/// does not say which queued request a freed runner takes). It never waits for a busy holder.
/// </summary>
public sealed class FalDocumentedPolicy(IRandomSource random) : IPlacementPolicy
{
    /// <inheritdoc />
    public string Name => PlacementPolicies.FalDocumented;

    /// <inheritdoc />
    public PlacementChoice? Next(PlacementContext context)
    {
        if (context.Runners.Free.Count == 0 || context.Queue.Head is not { } head)
        {
            return null;
        }

        var runner = (head.Request.Hint is { } hint ? PickFree(context.Runners.Holding(hint)) : null) ?? PickFree(context.Runners.Free);
        return runner is null ? null : PlacementChoice.Of(head, runner);
    }

    private RunnerState? PickFree(IReadOnlyCollection<RunnerState> candidates)
    {
        var free = candidates.Where(r => r.IsFree).OrderBy(r => r.RunnerId, StringComparer.Ordinal).ToList();
        return free.Count == 0 ? null : free[random.Next(free.Count)];
    }
}
