using System.Diagnostics;
using System.Globalization;
using FalHints.Client.Contracts;
using FalHints.Router.Placement;
using FalHints.Router.Queue;

namespace FalHints.Benchmarks.Simulation;

/// <summary>
/// One policy's figures on one workload. <c>Loads</c> counts every model load from storage: the misses and the
/// background loads (<c>Prewarms</c>); <c>Promotions</c> the misses and background loads served from a runner's host
/// tier instead (a copy to the device).
/// </summary>
public sealed record PolicyResult(
    string Policy, double HitRate, long Loads, long Evictions, double P50Ms, double P95Ms, double P99Ms,
    double MeanQueueMs, double ThroughputRps, int Completed, long Prewarms = 0, long Promotions = 0)
{
    /// <summary>Every request's latency, sorted (for plots).</summary>
    public double[] LatenciesMs { get; init; } = [];

    /// <summary>The loads from storage and promotions by cause (<see cref="LoadCause"/>), each count under its cause's name.</summary>
    public IReadOnlyDictionary<string, long> LoadCauses { get; init; } = new Dictionary<string, long>();

    /// <summary>Where the runners' time went, summed over the runners' slots, from the first arrival to the end of the run.</summary>
    public RunnerTime Time { get; init; } = new(0, 0, 0, 0, 0);

    /// <summary>Wall time spent in the dispatcher's <see cref="Dispatcher.Pump"/>, the router's placement decisions (the policy's included).</summary>
    public TimeSpan PlacementTime { get; init; }
}

/// <summary>
/// Runner time, summed over the runners' slots (<see cref="Workload.MaxMultiplexing"/> each; one in the built-in
/// workloads), in milliseconds: running inference, loading models from storage (for requests and in the background),
/// promoting them from host memory, slots idle while requests waited in the router's queue, and slots idle with none
/// waiting there (requests may still wait in other runners' own queues, for policies that queue at runners). The parts
/// add up to the slots times the span of the run: from the first arrival to the last event (the last completion, or a
/// background load that ends after it).
/// </summary>
public sealed record RunnerTime(double ServingMs, double LoadingMs, double PromotingMs, double IdleWaitingMs, double IdleEmptyMs)
{
    /// <summary>All of it: the runners' slots times the span of the run.</summary>
    public double TotalMs => ServingMs + LoadingMs + PromotingMs + IdleWaitingMs + IdleEmptyMs;
}

/// <summary>
/// Why a model was loaded (from storage or from a host tier), as the simulator sees the whole fleet: a model's first load
/// anywhere; another copy of a model some runner holds, in the background (a prewarm) or by a request; or a load of a
/// model nobody holds any more, named after what evicted its last copy (a first load, a background copy, a request's
/// copy, or another such reload).
/// </summary>
public static class LoadCause
{
    /// <summary>The model's first load anywhere: every policy pays it (Belady's misses).</summary>
    public const string First = "first";

    /// <summary>A background load of a model another runner holds.</summary>
    public const string BackgroundCopy = "background copy";

    /// <summary>A request's load of a model another runner holds.</summary>
    public const string RequestCopy = "request copy";

    /// <summary>The prefix of a reload: a load of a model no runner holds any more, though one did.</summary>
    public const string ReloadPrefix = "reload, last copy evicted by ";

    /// <summary>The name of a reload whose model's last copy was evicted by a load of <paramref name="cause"/>.</summary>
    public static string Reload(string cause) => ReloadPrefix + (cause.StartsWith(ReloadPrefix, StringComparison.Ordinal) ? "a reload" : cause);
}

/// <summary>
/// A discrete-event simulation in virtual time that drives the router's real <see cref="Dispatcher"/> and policy.
/// Each runner accepts what the router sends it, runs <see cref="Workload.MaxMultiplexing"/> requests at once and
/// keeps the others in its own queue, in order (so policies that queue at runners are modelled as they behave); it
/// keeps an LRU cache of models within its memory, and a request whose model is not cached when it starts waits for the
/// load (fixed cost plus size over bandwidth) before its inference. With a host tier (<see cref="Workload.HostMemoryBytes"/>)
/// a model evicted from the device is kept in the runner's host memory (<see cref="HostTier"/>, LRU within its budget),
/// and a model found there is promoted instead of loaded: size over the host-to-device bandwidth; the runner reports
/// those models as <see cref="HintsEvent.Warm"/> and its measured promotion time. A background load the policy asks for (a prewarm)
/// waits in the same queue and keeps the runner busy for the whole load, like a request. After every response the
/// runner reports its cached models, most recently used first, as its hints, and the models it is loading.
/// </summary>
public static class Simulator
{
    /// <summary>The dispatcher settings of a simulation: the default starvation bound, no queue limit.</summary>
    public static DispatcherOptions Options { get; } = DispatcherOptions.Default with { MaxQueueLength = int.MaxValue };

    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>Runs <paramref name="workload"/> under <paramref name="policy"/>, reporting completed requests as it goes.</summary>
    public static PolicyResult Run(Workload workload, IPlacementPolicy policy, IProgress<long>? progress = null, DispatcherOptions? options = null)
    {
        var dispatcher = new Dispatcher(policy, options ?? Options);
        var runners = Enumerable.Range(0, workload.Runners)
            .Select(i => new SimRunner($"sim-{i / 8}/cpu:{i % 8}", workload))
            .ToDictionary(r => r.Id, StringComparer.Ordinal);
        long sequence = 0;
        foreach (var runner in runners.Values)
        {
            dispatcher.Index.Apply(runner.Describe(++sequence), T0);
        }

        var requests = workload.Requests;
        var events = new PriorityQueue<(Kind Kind, int Request, SimRunner? Runner, string? Prewarm), (double, long)>();
        for (var i = 0; i < requests.Count; i++)
        {
            events.Enqueue((Kind.Arrival, i, null, null), (requests[i].ArrivalMs, i));
        }

        var started = new double[requests.Count];
        var finished = new double[requests.Count];
        long order = requests.Count;
        long hits = 0, loads = 0, promotions = 0, evictions = 0, completed = 0, prewarms = 0;
        var copies = new Dictionary<string, int>(StringComparer.Ordinal);
        var lastCopyEvictedBy = new Dictionary<string, string>(StringComparer.Ordinal);
        var causes = new Dictionary<string, long>(StringComparer.Ordinal);

        // Counts a load by its cause as the fleet stands before it, then follows the copies it adds and evicts.
        void Count(string model, bool background, IReadOnlyList<string> evicted)
        {
            var cause = copies.GetValueOrDefault(model) > 0 ? (background ? LoadCause.BackgroundCopy : LoadCause.RequestCopy)
                : lastCopyEvictedBy.TryGetValue(model, out var by) ? LoadCause.Reload(by) : LoadCause.First;
            causes[cause] = causes.GetValueOrDefault(cause) + 1;
            copies[model] = copies.GetValueOrDefault(model) + 1;
            foreach (var victim in evicted)
            {
                if (--copies[victim] == 0)
                {
                    lastCopyEvictedBy[victim] = cause;
                }
            }
        }

        var wakeAt = double.MaxValue;
        var lastResponse = 0.0;
        var placement = new Stopwatch();
        double idleWaiting = 0, idleEmpty = 0, clock = requests.Count > 0 ? requests[0].ArrivalMs : 0;

        void Start(SimRunner runner, double now)
        {
            while (runner.StartNext() is { } job)
            {
                if (job.Prewarm is { } model)
                {
                    var (cached, prewarmMs, promoted) = runner.Use(model, -1);
                    if (!cached)
                    {
                        Count(model, background: true, runner.Evicted);
                    }

                    loads += cached || promoted ? 0 : 1;
                    promotions += promoted ? 1 : 0;
                    evictions += runner.Evicted.Count;
                    events.Enqueue((Kind.PrewarmDone, -1, runner, model), (now + prewarmMs, order++));
                    continue;
                }

                var run = job.Request;
                var request = requests[run];
                var (hit, loadMs, fromHost) = runner.Use(request.Model, run);
                if (!hit)
                {
                    Count(request.Model, background: false, runner.Evicted);
                }

                hits += hit ? 1 : 0;
                loads += hit || fromHost ? 0 : 1;
                promotions += fromHost ? 1 : 0;
                evictions += runner.Evicted.Count;
                started[run] = now;
                events.Enqueue((Kind.Completion, run, runner, null), (now + loadMs + request.ServiceMs, order++));
            }
        }

        while (events.TryDequeue(out var next, out var at))
        {
            var now = at.Item1;
            if (now > clock)
            {
                // Since the previous event nothing changed: a slot idle then was idle all along.
                var idle = runners.Values.Sum(r => r.IdleSlots) * (now - clock);
                if (dispatcher.Queue.Count > 0)
                {
                    idleWaiting += idle;
                }
                else
                {
                    idleEmpty += idle;
                }

                clock = now;
            }

            switch (next.Kind)
            {
                case Kind.Arrival:
                    var arriving = requests[next.Request];
                    dispatcher.Enqueue(new RequestTicket(
                        new InferenceRequest(next.Request.ToString(CultureInfo.InvariantCulture), "sim/app", "{}", arriving.Hinted ? arriving.Model : null),
                        T0.AddMilliseconds(arriving.ArrivalMs)));
                    break;
                case Kind.Completion:
                    var done = next.Runner!;
                    finished[next.Request] = now;
                    lastResponse = now;
                    done.Finish(next.Request, requests[next.Request].ServiceMs);
                    Start(done, now);
                    dispatcher.Index.Apply(done.Describe(++sequence), T0.AddMilliseconds(now));
                    dispatcher.Complete(next.Request.ToString(CultureInfo.InvariantCulture), done.Id);
                    if (++completed % 10_000 == 0)
                    {
                        progress?.Report(completed);
                    }

                    break;
                case Kind.PrewarmDone:
                    var warmed = next.Runner!;
                    warmed.FinishPrewarm(next.Prewarm!);
                    Start(warmed, now);
                    dispatcher.Index.Apply(warmed.Describe(++sequence), T0.AddMilliseconds(now));
                    dispatcher.PrewarmDone(new PrewarmChoice(next.Prewarm!, warmed.Id));
                    break;
                default:
                    wakeAt = double.MaxValue;
                    break;
            }

            placement.Start();
            var dispatches = dispatcher.Pump(T0.AddMilliseconds(now));
            placement.Stop();
            foreach (var dispatch in dispatches)
            {
                var runner = runners[dispatch.RunnerId];
                runner.Accept(new Job(int.Parse(dispatch.Ticket.RequestId, CultureInfo.InvariantCulture), null));
                Start(runner, now);
            }

            foreach (var prewarm in dispatcher.Prewarms)
            {
                var runner = runners[prewarm.RunnerId];
                prewarms++;
                runner.Accept(new Job(-1, prewarm.Hint));
                Start(runner, now);
            }

            if (dispatcher.NextWake is { } wake && dispatcher.Queue.Count > 0)
            {
                // Never sooner than a millisecond ahead, so a policy that keeps asking cannot stall virtual time.
                var wakeMs = Math.Max((wake - T0).TotalMilliseconds, now + 1);
                if (wakeMs < wakeAt)
                {
                    wakeAt = wakeMs;
                    events.Enqueue((Kind.Wake, -1, null, null), (wakeMs, order++));
                }
            }
        }

        if (completed != requests.Count)
        {
            throw new InvalidOperationException($"{policy.Name} on {workload.Name}: {requests.Count - completed} of {requests.Count} requests never started ({dispatcher.Queue.Count} still queued).");
        }

        var latencies = requests.Select((r, i) => finished[i] - r.ArrivalMs).Order().ToArray();
        // Throughput counts to the last response: a background load still running after it delays no request.
        var makespan = lastResponse - requests[0].ArrivalMs;
        return new PolicyResult(policy.Name, hits / (double)requests.Count, loads, evictions,
            Percentile(latencies, 0.50), Percentile(latencies, 0.95), Percentile(latencies, 0.99),
            requests.Select((r, i) => started[i] - r.ArrivalMs).Average(),
            requests.Count / (makespan / 1000), requests.Count, prewarms, promotions)
        {
            LatenciesMs = latencies,
            LoadCauses = causes,
            PlacementTime = placement.Elapsed,
            Time = new RunnerTime(runners.Values.Sum(r => r.ServingMs), runners.Values.Sum(r => r.LoadingMs), runners.Values.Sum(r => r.PromotingMs), idleWaiting, idleEmpty),
        };
    }

    /// <summary>The value at quantile <paramref name="p"/> of sorted values.</summary>
    public static double Percentile(double[] sorted, double p) => sorted[Math.Min(sorted.Length - 1, (int)(sorted.Length * p))];

    private enum Kind
    {
        Arrival,
        Completion,
        PrewarmDone,
        Wake,
    }

    /// <summary>What a simulated runner runs: a request, or a background load of <paramref name="Prewarm"/>.</summary>
    private readonly record struct Job(int Request, string? Prewarm);

    /// <summary>
    /// A simulated runner: the requests it accepted (running and waiting in its own queue), its model cache (LRU within
    /// its device memory, then its host tier if it has one) and its load, promotion and service statistics.
    /// <see cref="Use"/> decides where a model comes from and what that costs.
    /// </summary>
    private sealed class SimRunner(string id, Workload workload)
    {
        private readonly LinkedList<(string Model, long Bytes)> _lru = new();
        private readonly HostTier _host = new(workload.HostMemoryBytes);
        private readonly Queue<Job> _waiting = new();
        private readonly HashSet<string> _loading = new(StringComparer.Ordinal);
        private readonly Dictionary<int, string> _runningLoads = [];
        private readonly HashSet<string> _prewarmLoads = new(StringComparer.Ordinal);
        private double _loadMsTotal;
        private double _promotionMsTotal;
        private long _promotions;
        private double _serviceMsTotal;
        private long _served;
        private int _running;

        public string Id { get; } = id;

        /// <summary>The runner's slots that run nothing (neither a request nor a load).</summary>
        public int IdleSlots => workload.MaxMultiplexing - _running;

        /// <summary>Time spent on inference (without the loads before it).</summary>
        public double ServingMs => _serviceMsTotal;

        /// <summary>Time spent loading models from storage.</summary>
        public double LoadingMs => _loadMsTotal;

        /// <summary>Time spent promoting models from host memory.</summary>
        public double PromotingMs => _promotionMsTotal;

        /// <summary>The models the last <see cref="Use"/> evicted from the device.</summary>
        public List<string> Evicted { get; } = [];

        private long BytesUsed { get; set; }

        private long Loads { get; set; }

        /// <summary>Takes a request or a background load into the runner's own queue.</summary>
        public void Accept(Job job) => _waiting.Enqueue(job);

        /// <summary>The next job to run, when a slot is free and one waits.</summary>
        public Job? StartNext()
        {
            if (_running >= workload.MaxMultiplexing || _waiting.Count == 0)
            {
                return null;
            }

            _running++;
            return _waiting.Dequeue();
        }

        /// <summary>A running request finished.</summary>
        public void Finish(int request, double serviceMs)
        {
            _running--;
            _served++;
            _serviceMsTotal += serviceMs;
            if (_runningLoads.Remove(request, out var model))
            {
                _loading.Remove(model);
            }
        }

        /// <summary>A background load finished.</summary>
        public void FinishPrewarm(string model)
        {
            _running--;
            if (_prewarmLoads.Remove(model))
            {
                _loading.Remove(model);
            }
        }

        /// <summary>
        /// Makes <paramref name="model"/> the most recently used, loading it (evicting the least recently used into the
        /// host tier, if there is one) if absent: promoted from the host tier when it is there, else loaded from storage;
        /// <paramref name="request"/> is -1 for a background load. What it evicted is in <see cref="Evicted"/>.
        /// </summary>
        public (bool Hit, double LoadMs, bool Promoted) Use(string model, int request)
        {
            Evicted.Clear();
            for (var node = _lru.First; node is not null; node = node.Next)
            {
                if (node.Value.Model == model)
                {
                    _lru.Remove(node);
                    _lru.AddFirst(node);
                    return (true, 0, false);
                }
            }

            var bytes = workload.ModelBytes[model];
            var promoted = _host.Take(model);
            while (_lru.Count > 0 && BytesUsed + bytes > workload.RunnerMemoryBytes)
            {
                var (victim, victimBytes) = _lru.Last!.Value;
                BytesUsed -= victimBytes;
                _lru.RemoveLast();
                _host.Keep(victim, victimBytes);
                Evicted.Add(victim);
            }

            _lru.AddFirst((model, bytes));
            BytesUsed += bytes;
            var loadMs = promoted ? workload.PromotionMs(model) : workload.LoadMs(model);
            _loading.Add(model);
            if (request >= 0)
            {
                _runningLoads[request] = model;
            }
            else
            {
                _prewarmLoads.Add(model);
            }

            if (promoted)
            {
                _promotions++;
                _promotionMsTotal += loadMs;
            }
            else
            {
                Loads++;
                _loadMsTotal += loadMs;
            }

            return (false, loadMs, promoted);
        }

        /// <summary>What the runner publishes after a response.</summary>
        public HintsEvent Describe(long sequence) => new(
            Id, Id.Split('/')[0], Id.Split('/')[1], "sim/app", [.. _lru.Select(e => e.Model).Where(m => !_loading.Contains(m))], _running, workload.MaxMultiplexing, sequence,
            T0, HintsEventKind.Response, [.. _loading],
            new CacheUsage(BytesUsed, workload.RunnerMemoryBytes, 0, 0, Loads, 0, Loads == 0 ? 0 : _loadMsTotal / Loads,
                _host.BytesUsed, _host.BudgetBytes, _promotions, 0, _promotions == 0 ? 0 : _promotionMsTotal / _promotions),
            new AppRouting(null, _served == 0 ? 0 : _serviceMsTotal / _served), Warm: [.. _host.Models]);
    }
}
