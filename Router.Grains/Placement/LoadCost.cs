using FalHints.Client.Contracts;
using FalHints.Router.Hints;

namespace FalHints.Router.Placement;

/// <summary>Estimates what it costs to make a runner ready for a hint, so policies never hard-code a load time.</summary>
public interface ILoadCostEstimator
{
    /// <summary>
    /// Expected milliseconds until <paramref name="runner"/> could serve <paramref name="hint"/>, counting only the load:
    /// 0 when it holds the hint; <see cref="PromotionMs"/> when it keeps the hint in host memory (<see cref="RunnerState.Warm"/>);
    /// otherwise <see cref="StoreLoadMs"/>.
    /// </summary>
    double LoadMs(RunnerState runner, string hint);

    /// <summary>Expected milliseconds of a load from the model store on <paramref name="runner"/> (a cold load).</summary>
    double StoreLoadMs(RunnerState runner);

    /// <summary>Expected milliseconds to bring a model back from <paramref name="runner"/>'s host tier to its device.</summary>
    double PromotionMs(RunnerState runner);

    /// <summary>Expected milliseconds of one inference on <paramref name="runner"/>.</summary>
    double InferenceMs(RunnerState runner);
}

/// <summary>
/// Load costs from what runners measure and report, per tier: a load from the model store costs the runner's own mean
/// load time (<see cref="CacheUsage.MeanLoadMs"/>), else the mean over the runners that have loaded something, else
/// <see cref="UnknownLoadMs"/>; a model the runner keeps in host memory costs its mean promotion time
/// (<see cref="CacheUsage.MeanPromotionMs"/>), else the fleet's, else <see cref="UnknownPromotionShare"/> of a store load.
/// Inference time likewise.
/// </summary>
public sealed class ReportedLoadCost : ILoadCostEstimator
{
    /// <summary>The load time assumed before any runner has reported one.</summary>
    public const double UnknownLoadMs = 1_000;

    /// <summary>The inference time assumed before any runner has reported one.</summary>
    public const double UnknownInferenceMs = 100;

    /// <summary>
    /// The share of a store load a promotion from host memory is assumed to cost before any runner has measured one: a
    /// pinned host-to-device copy runs about ten times as fast as a read from the page cache into device memory.
    /// </summary>
    public const double UnknownPromotionShare = 0.1;

    private IRunnerIndex? _runners;
    private bool _stale;
    private double _meanLoadMs;
    private double _meanPromotionMs;
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
        double loads = 0, loadMs = 0, promotions = 0, promotionMs = 0, served = 0, inferenceMs = 0;
        foreach (var runner in _runners.All)
        {
            if (runner.Cache.Loads > 0)
            {
                loads += runner.Cache.Loads;
                loadMs += runner.Cache.Loads * runner.Cache.MeanLoadMs;
            }

            if (runner.Cache.Promotions > 0)
            {
                promotions += runner.Cache.Promotions;
                promotionMs += runner.Cache.Promotions * runner.Cache.MeanPromotionMs;
            }

            if (runner.MeanInferenceMs > 0)
            {
                served++;
                inferenceMs += runner.MeanInferenceMs;
            }
        }

        _meanLoadMs = loads > 0 ? loadMs / loads : UnknownLoadMs;
        _meanPromotionMs = promotions > 0 ? promotionMs / promotions : 0;
        _meanInferenceMs = served > 0 ? inferenceMs / served : UnknownInferenceMs;
    }

    /// <inheritdoc />
    public double LoadMs(RunnerState runner, string hint) =>
        runner.Holds(hint) ? 0
        : runner.Warm.Contains(hint, StringComparer.Ordinal) ? PromotionMs(runner)
        : StoreLoadMs(runner);

    /// <inheritdoc />
    public double StoreLoadMs(RunnerState runner)
    {
        if (runner.Cache.Loads > 0)
        {
            return runner.Cache.MeanLoadMs;
        }

        Refresh();
        return _runners is null ? UnknownLoadMs : _meanLoadMs;
    }

    /// <inheritdoc />
    public double PromotionMs(RunnerState runner)
    {
        if (runner.Cache.Promotions > 0)
        {
            return runner.Cache.MeanPromotionMs;
        }

        Refresh();
        return _runners is not null && _meanPromotionMs > 0 ? _meanPromotionMs : UnknownPromotionShare * StoreLoadMs(runner);
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
