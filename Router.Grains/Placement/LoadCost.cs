using FalHints.Router.Hints;

namespace FalHints.Router.Placement;

/// <summary>Estimates what it costs to make a runner ready for a hint, so policies never hard-code a load time.</summary>
public interface ILoadCostEstimator
{
    /// <summary>
    /// Expected milliseconds until <paramref name="runner"/> could serve <paramref name="hint"/>, counting only the load:
    /// 0 when it holds the hint; otherwise what a load there is expected to take.
    /// </summary>
    double LoadMs(RunnerState runner, string hint);

    /// <summary>Expected milliseconds of one inference on <paramref name="runner"/>.</summary>
    double InferenceMs(RunnerState runner);
}

/// <summary>
/// Load costs from what runners report: a runner's own mean load time, else the mean over the runners that have
/// loaded something, else <see cref="UnknownLoadMs"/>. Inference time likewise. A runner that reports a cheaper tier
/// for a hint (a copy in host memory) would answer with that tier's time here.
/// </summary>
public sealed class ReportedLoadCost : ILoadCostEstimator
{
    /// <summary>The load time assumed before any runner has reported one.</summary>
    public const double UnknownLoadMs = 1_000;

    /// <summary>The inference time assumed before any runner has reported one.</summary>
    public const double UnknownInferenceMs = 100;

    private IRunnerIndex? _runners;
    private bool _stale;
    private double _meanLoadMs;
    private double _meanInferenceMs;

    /// <summary>Takes the fleet-wide means from <paramref name="runners"/> (once per decision round; computed when first needed).</summary>
    public void Observe(IRunnerIndex runners)
    {
        _runners = runners;
        _stale = true;
    }

    private void Refresh()
    {
        if (!_stale || _runners is null)
        {
            return;
        }

        _stale = false;
        double loads = 0, loadMs = 0, served = 0, inferenceMs = 0;
        foreach (var runner in _runners.All)
        {
            if (runner.Cache.Loads > 0)
            {
                loads += runner.Cache.Loads;
                loadMs += runner.Cache.Loads * runner.Cache.MeanLoadMs;
            }

            if (runner.MeanInferenceMs > 0)
            {
                served++;
                inferenceMs += runner.MeanInferenceMs;
            }
        }

        _meanLoadMs = loads > 0 ? loadMs / loads : UnknownLoadMs;
        _meanInferenceMs = served > 0 ? inferenceMs / served : UnknownInferenceMs;
    }

    /// <inheritdoc />
    public double LoadMs(RunnerState runner, string hint)
    {
        if (runner.Holds(hint))
        {
            return 0;
        }

        if (runner.Cache.Loads > 0)
        {
            return runner.Cache.MeanLoadMs;
        }

        Refresh();
        return _runners is null ? UnknownLoadMs : _meanLoadMs;
    }

    /// <inheritdoc />
    public double InferenceMs(RunnerState runner)
    {
        if (runner.MeanInferenceMs > 0)
        {
            return runner.MeanInferenceMs;
        }

        Refresh();
        return _runners is null ? UnknownInferenceMs : _meanInferenceMs;
    }
}
