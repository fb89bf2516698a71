using FalHints.Client.Contracts;
using FalHints.Router.Placement;
using FalHints.Router.Queue;

namespace FalHints.Benchmarks.Simulation;

/// <summary>One policy's figures on one workload.</summary>
public sealed record PolicyResult(
    string Policy, double HitRate, long Loads, long Evictions, double P50Ms, double P95Ms, double P99Ms,
    double MeanQueueMs, double ThroughputRps, int Completed)
{
    /// <summary>Every request's latency, sorted (for plots).</summary>
    public double[] LatenciesMs { get; init; } = [];
}

/// <summary>
/// A discrete-event simulation in virtual time that drives the router's real <see cref="Dispatcher"/> and policy.
/// Each runner serves one request at a time and keeps an LRU cache of models within its memory; a request whose
/// model is not cached waits for the load (fixed cost plus size over bandwidth) before its inference. After every
/// response the runner reports its cached models, most recently used first, as its hints.
/// </summary>
public static class Simulator
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>Runs <paramref name="workload"/> under <paramref name="policy"/>, reporting completed requests as it goes.</summary>
    public static PolicyResult Run(Workload workload, IPlacementPolicy policy, IProgress<long>? progress = null)
    {
        var dispatcher = new Dispatcher(policy, new DispatcherOptions(TimeSpan.FromSeconds(10), int.MaxValue, 10, 256));
        var runners = Enumerable.Range(0, workload.Runners).Select(i => new SimRunner($"sim-{i / 8}/cpu:{i % 8}")).ToDictionary(r => r.Id, StringComparer.Ordinal);
        long sequence = 0;
        foreach (var runner in runners.Values)
        {
            dispatcher.Index.Apply(Describe(runner, ++sequence), T0);
        }

        var events = new PriorityQueue<(int Kind, int Request, string? Runner), (double, long)>();
        for (var i = 0; i < workload.Requests.Count; i++)
        {
            events.Enqueue((0, i, null), (workload.Requests[i].ArrivalMs, i));
        }

        var started = new double[workload.Requests.Count];
        var finished = new double[workload.Requests.Count];
        long order = workload.Requests.Count;
        long hits = 0, loads = 0, evictions = 0;
        var tickPending = false;
        var last = 0.0;
        long completed = 0;

        while (events.TryDequeue(out var next, out var at))
        {
            var now = at.Item1;
            last = now;
            switch (next.Kind)
            {
                case 0:
                    var request = workload.Requests[next.Request];
                    dispatcher.Enqueue(new RequestTicket(
                        new InferenceRequest(next.Request.ToString(System.Globalization.CultureInfo.InvariantCulture), "sim/app", "{}", request.Hinted ? request.Model : null),
                        T0.AddMilliseconds(request.ArrivalMs)));
                    break;
                case 1:
                    var done = runners[next.Runner!];
                    finished[next.Request] = now;
                    dispatcher.Index.Apply(Describe(done, ++sequence), T0.AddMilliseconds(now));
                    dispatcher.Complete(next.Request.ToString(System.Globalization.CultureInfo.InvariantCulture), done.Id);
                    if (++completed % 10_000 == 0)
                    {
                        progress?.Report(completed);
                    }

                    break;
                default:
                    tickPending = false;
                    break;
            }

            foreach (var dispatch in dispatcher.Pump(T0.AddMilliseconds(now)))
            {
                var index = int.Parse(dispatch.Ticket.RequestId, System.Globalization.CultureInfo.InvariantCulture);
                var request = workload.Requests[index];
                var runner = runners[dispatch.RunnerId];
                var (hit, evicted) = runner.Use(request.Model, workload.ModelBytes[request.Model], workload.RunnerMemoryBytes);
                var loadMs = hit ? 0 : workload.LoadMs(request.Model);
                hits += hit ? 1 : 0;
                loads += hit ? 0 : 1;
                evictions += evicted;
                runner.RecordLoad(loadMs, hit);
                runner.RecordService(request.ServiceMs);
                started[index] = now;
                events.Enqueue((1, index, runner.Id), (now + loadMs + request.ServiceMs, order++));
            }

            // Policies that wait (cost-aware, Ray's holder window) are asked again as time passes.
            if (!tickPending && dispatcher.Queue.Count > 0 && dispatcher.Index.Free.Count > 0)
            {
                events.Enqueue((2, -1, null), (now + 50, order++));
                tickPending = true;
            }
        }

        var latencies = workload.Requests.Select((r, i) => finished[i] - r.ArrivalMs).Order().ToArray();
        var makespan = last - workload.Requests[0].ArrivalMs;
        return new PolicyResult(policy.Name, hits / (double)workload.Requests.Count, loads, evictions,
            Percentile(latencies, 0.50), Percentile(latencies, 0.95), Percentile(latencies, 0.99),
            workload.Requests.Select((r, i) => started[i] - r.ArrivalMs).Average(),
            workload.Requests.Count / (makespan / 1000), workload.Requests.Count) { LatenciesMs = latencies };
    }

    public static double Percentile(double[] sorted, double p) => sorted[Math.Min(sorted.Length - 1, (int)(sorted.Length * p))];

    private static HintsEvent Describe(SimRunner runner, long sequence) => new(
        runner.Id, runner.Id.Split('/')[0], runner.Id.Split('/')[1], "sim/app", [.. runner.Models], 0, 1, sequence, T0,
        HintsEventKind.Response, [], new CacheUsage(runner.BytesUsed, 0, 0, 0, runner.Loads, 0, runner.MeanLoadMs),
        new AppRouting(null, runner.MeanServiceMs));

    /// <summary>A simulated runner's model cache (LRU within its memory) and its load and service statistics.</summary>
    private sealed class SimRunner(string id)
    {
        private readonly LinkedList<(string Model, long Bytes)> _lru = new();
        private double _loadMsTotal;
        private double _serviceMsTotal;
        private long _served;

        public string Id { get; } = id;

        public long BytesUsed { get; private set; }

        public long Loads { get; private set; }

        public double MeanLoadMs => Loads == 0 ? 0 : _loadMsTotal / Loads;

        public double MeanServiceMs => _served == 0 ? 0 : _serviceMsTotal / _served;

        public IEnumerable<string> Models => _lru.Select(e => e.Model);

        /// <summary>Makes <paramref name="model"/> the most recently used, loading it (evicting the least recently used) if absent.</summary>
        public (bool Hit, int Evicted) Use(string model, long bytes, long memory)
        {
            for (var node = _lru.First; node is not null; node = node.Next)
            {
                if (node.Value.Model == model)
                {
                    _lru.Remove(node);
                    _lru.AddFirst(node);
                    return (true, 0);
                }
            }

            var evicted = 0;
            while (_lru.Count > 0 && BytesUsed + bytes > memory)
            {
                BytesUsed -= _lru.Last!.Value.Bytes;
                _lru.RemoveLast();
                evicted++;
            }

            _lru.AddFirst((model, bytes));
            BytesUsed += bytes;
            return (false, evicted);
        }

        public void RecordLoad(double ms, bool hit)
        {
            if (!hit)
            {
                Loads++;
                _loadMsTotal += ms;
            }
        }

        public void RecordService(double ms)
        {
            _served++;
            _serviceMsTotal += ms;
        }
    }
}
