using System.Diagnostics.Metrics;
using FalHints.Client.Contracts;
using FalHints.Runner.Pipelines;

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
        _loadTime = meter.CreateHistogram<double>("falhints.pipeline.load_time", "ms", "Time to load a pipeline onto its device, from the model store or from host memory.");
        _inferenceTime = meter.CreateHistogram<double>("falhints.request.inference_time", "ms", "Time a runner spent on a successful request, loads included.");
    }

    /// <summary>Records a completed pipeline load, tagged with where it came from (<c>store</c> or <c>host</c>, the host tier).</summary>
    public void Loaded(string device, PipelineLoad load) => _loadTime.Record(load.Elapsed.TotalMilliseconds,
        new KeyValuePair<string, object?>("device", device), new KeyValuePair<string, object?>("from", load.FromHost ? "host" : "store"));

    /// <summary>Records a successful request.</summary>
    public void Served(string appId, TimeSpan elapsed) => _inferenceTime.Record(elapsed.TotalMilliseconds, new KeyValuePair<string, object?>("app", appId));
}
