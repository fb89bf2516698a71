using System.Diagnostics.Metrics;
using FalHints.Client.Contracts;

namespace FalHints.Router.Metrics;

/// <summary>What routers measure: hint hits and fallbacks, retries, and how long requests wait to start.</summary>
public sealed class RouterMetrics
{
    private readonly Counter<long> _hits;
    private readonly Counter<long> _fallbacks;
    private readonly Counter<long> _retries;
    private readonly Histogram<double> _queueWait;

    /// <summary>Creates the instruments on the <see cref="FalHintsMeter.Name"/> meter.</summary>
    public RouterMetrics(IMeterFactory meters)
    {
        var meter = meters.Create(FalHintsMeter.Name);
        _hits = meter.CreateCounter<long>("falhints.router.hits", description: "Hinted requests placed on a runner holding their hint.");
        _fallbacks = meter.CreateCounter<long>("falhints.router.fallbacks", description: "Hinted requests placed on a runner without their hint (misses).");
        _retries = meter.CreateCounter<long>("falhints.router.retries", description: "Requests queued again because their runner was lost.");
        _queueWait = meter.CreateHistogram<double>("falhints.request.queue_wait", "ms", "Time from acceptance to dispatch.");
    }

    /// <summary>Records a dispatch.</summary>
    public void Dispatched(string appId, bool hinted, bool hit, TimeSpan waited)
    {
        var app = new KeyValuePair<string, object?>("app", appId);
        if (hinted)
        {
            (hit ? _hits : _fallbacks).Add(1, app);
        }

        _queueWait.Record(waited.TotalMilliseconds, app);
    }

    /// <summary>Records a request sent back to the queue.</summary>
    public void Retried(string appId) => _retries.Add(1, new KeyValuePair<string, object?>("app", appId));
}
