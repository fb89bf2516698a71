using System.Diagnostics.Metrics;
using FalHints.Client.Contracts;

namespace FalHints.Runner.Metrics;

/// <summary>What runners measure: model load times and request (inference) times.</summary>
public sealed class RunnerMetrics
{
    private readonly Histogram<double> _loadTime;
    private readonly Histogram<double> _inferenceTime;

    /// <summary>Creates the instruments on the <see cref="FalHintsMeter.Name"/> meter.</summary>
    public RunnerMetrics(IMeterFactory meters)
    {
        var meter = meters.Create(FalHintsMeter.Name);
        _loadTime = meter.CreateHistogram<double>("falhints.pipeline.load_time", "ms", "Time to load a pipeline onto its device.");
        _inferenceTime = meter.CreateHistogram<double>("falhints.request.inference_time", "ms", "Time a runner spent on a successful request, loads included.");
    }

    /// <summary>Records a completed pipeline load.</summary>
    public void Loaded(string device, TimeSpan elapsed) => _loadTime.Record(elapsed.TotalMilliseconds, new KeyValuePair<string, object?>("device", device));

    /// <summary>Records a successful request.</summary>
    public void Served(string appId, TimeSpan elapsed) => _inferenceTime.Record(elapsed.TotalMilliseconds, new KeyValuePair<string, object?>("app", appId));
}
