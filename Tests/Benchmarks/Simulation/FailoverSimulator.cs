using System.Globalization;
using FalHints.Client.Contracts;
using FalHints.Router.Placement;
using FalHints.Router.Routing;

namespace FalHints.Benchmarks.Simulation;

/// <summary>What goes wrong in a failover run.</summary>
/// <param name="Name">The scenario's name in reports.</param>
/// <param name="DeathAtMs">When one silo (two runners) dies, with the requests they run; null: none dies.</param>
/// <param name="RestartAtMs">When the router loses its state (a new activation); null: it never does.</param>
/// <param name="LostNoticeShare">Share of runners' completion notices to the router that are lost (the request still gets its result).</param>
/// <param name="LostResultShare">Share of finished requests whose result reaches neither the request nor the router (the runner's reports all fail).</param>
/// <param name="DetectionMs">How long the membership takes to declare a dead silo dead; calls to it fail then.</param>
public sealed record FailureScenario(string Name, double? DeathAtMs, double? RestartAtMs, double LostNoticeShare, double LostResultShare, double DetectionMs);

/// <summary>The figures of one failover run.</summary>
/// <param name="Scenario">The scenario's name.</param>
/// <param name="Requests">Requests submitted.</param>
/// <param name="Completed">Requests that completed with a result.</param>
/// <param name="Failed">Requests that ended with an explicit error.</param>
/// <param name="Unfinished">Requests that neither completed nor failed with an error by the end of the run (ten minutes after the last arrival): lost, or still waiting in an overloaded queue. The router's guarantee: none lost.</param>
/// <param name="Retries">Attempts lost and started again.</param>
/// <param name="SlotsFreed">Runner slots held by a request whose completion notice was lost, freed by the router's audit.</param>
/// <param name="Affected">Requests on the dead runners, unfinished at the restart, or whose result was lost.</param>
/// <param name="RecoveryP50Ms">For the affected requests, the median time from the failure (for a lost result, the end of the run that lost it) to their completion.</param>
/// <param name="RecoveryMaxMs">The same, the longest.</param>
/// <param name="P50Ms">Median latency of the completed requests, from acceptance.</param>
/// <param name="P99Ms">Their 99th percentile.</param>
public sealed record FailoverResult(
    string Scenario, int Requests, int Completed, int Failed, int Unfinished, long Retries, long SlotsFreed, int Affected,
    double RecoveryP50Ms, double RecoveryMaxMs, double P50Ms, double P99Ms);

/// <summary>
/// Failover in virtual time: the router's real <see cref="RouterCore"/> (its ticks, liveness, audits, adoption after a
/// restart) drives simulated runners and request grains through the same effects the router grain carries out. Runners
/// run one request at a time with an LRU cache of models, send a heartbeat every 10 s and a notice after every request;
/// request grains remind the router of themselves every <see cref="RouterOptions.ResumeInterval"/> and keep their
/// state across a router restart. A dead silo's runners stop answering and lose what they run; calls to them fail once
/// the membership declares the silo dead. Background loads are off, so the figures are the lifecycle's alone.
/// </summary>
public static class FailoverSimulator
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private static readonly TimeSpan Heartbeat = TimeSpan.FromSeconds(10);

    /// <summary>Runs <paramref name="workload"/> under the default policy with <paramref name="scenario"/>'s failures.</summary>
    public static FailoverResult Run(Workload workload, FailureScenario scenario, int seed)
    {
        var options = new RouterOptions { PolicyPrewarms = false, MaxQueueLength = int.MaxValue };
        var random = new Random(seed);
        var runners = Enumerable.Range(0, workload.Runners).Select(i => new Runner($"sim-{i / 2}/cpu:{i % 2}", workload)).ToDictionary(r => r.Id, StringComparer.Ordinal);
        var silos = runners.Values.Select(r => r.Silo).ToHashSet(StringComparer.Ordinal);
        var deadSilo = runners.Values.First().Silo;
        var requests = workload.Requests;
        var grains = new Grain[requests.Count];
        var events = new PriorityQueue<Action, (double, long)>();
        long order = 0;
        long sequence = 0;
        var now = 0.0;

        // Ticks and heartbeats go on for ten minutes after the last arrival: long enough for every recovery.
        var horizon = requests[^1].ArrivalMs + 600_000;
        long retries = 0, slotsFreed = 0;
        void At(double ms, Action action) => events.Enqueue(action, (Math.Max(ms, now), order++));
        DateTimeOffset Time(double ms) => T0.AddMilliseconds(ms);
        bool Dead(Runner runner) => scenario.DeathAtMs is { } death && now >= death && runner.Silo == deadSilo;

        var core = new RouterCore("sim/app", new HintAffinityPolicy(), options, Time(0));
        HintsEvent Describe(Runner runner) => runner.Describe(++sequence);
        foreach (var runner in runners.Values)
        {
            core.RunnerEvent(Describe(runner), Time(0));
        }

        // A call to a dead runner fails when the membership declares its silo dead (at once if it has already).
        void Call(Runner runner, Action answered, Action failed) =>
            At(Dead(runner) ? scenario.DeathAtMs!.Value + scenario.DetectionMs : now, () => (Dead(runner) ? failed : answered)());

        void Run(Runner runner)
        {
            while (!Dead(runner) && runner.StartNext() is { } job)
            {
                var loadMs = runner.Use(requests[job.Request].Model);
                At(now + loadMs + requests[job.Request].ServiceMs, () => Finish(runner, job));
            }
        }

        void Finish(Runner runner, Job job)
        {
            if (Dead(runner) || !runner.Running.Remove(job))
            {
                return;
            }

            var grain = grains[job.Request];
            var lostResult = random.NextDouble() < scenario.LostResultShare;
            var lostNotice = lostResult || random.NextDouble() < scenario.LostNoticeShare;
            if (lostResult)
            {
                grain.Affected(now);
            }

            // The first result reported wins, whichever attempt it came from.
            if (!lostResult && grain.Completed is null)
            {
                grain.Completed = now;
            }

            var after = Describe(runner);
            if (!lostNotice)
            {
                core.Completed(job.Request.ToString(CultureInfo.InvariantCulture), after, Time(now));
            }
            else
            {
                core.RunnerEvent(after, Time(now));
            }

            Run(runner);
            Carry();
        }

        void Carry()
        {
            foreach (var effect in core.TakeEffects())
            {
                switch (effect)
                {
                    case SendToRunner send:
                        var target = runners[send.Sent.RunnerId];
                        var sentTo = core;
                        Call(target, () =>
                        {
                            target.Accept(new Job(int.Parse(send.Sent.Ticket.RequestId, CultureInfo.InvariantCulture), send.Sent.Attempt));
                            var acceptedAfter = sequence;
                            Run(target);
                            Feed(sentTo, () => sentTo.DispatchSucceeded(send, acceptedAfter));
                        }, () => Feed(sentTo, () => sentTo.DispatchFailed(send, "silo dead", Time(now))));
                        break;
                    case NotifyStarted started:
                        grains[Id(started.RequestId)].Start(started.RunnerId, started.Attempt);
                        break;
                    case NotifyRequeued requeued:
                        retries++;
                        grains[Id(requeued.RequestId)].Requeue(requeued.RunnerId, requeued.Attempts);
                        break;
                    case CompletionUnreported:
                        slotsFreed++;
                        break;
                    case FailRequest fail:
                        grains[Id(fail.Ticket.RequestId)].Failed ??= now;
                        break;
                    case ConfirmRunner confirm:
                        var confirming = runners[confirm.RunnerId];
                        var askedBy = core;
                        Call(confirming, () => Feed(askedBy, () => askedBy.RunnerConfirmed(confirming.Id, Describe(confirming), Time(now))),
                            () => Feed(askedBy, () => askedBy.RunnerConfirmed(confirming.Id, null, Time(now))));
                        break;
                    case AskRunner ask:
                        var asked = runners[ask.Request.RunnerId];
                        var auditor = core;
                        var id = Id(ask.Request.Ticket.RequestId);
                        Call(asked, () => Feed(auditor, () => auditor.RunnerAnswered(ask,
                            new RunnerAnswer(asked.Has(id) ? RunnerAnswerKind.Running : ask.Audit && grains[id].Completed is not null ? RunnerAnswerKind.Completed : RunnerAnswerKind.Gone), Time(now))),
                            () => Feed(auditor, () => auditor.RunnerAnswered(ask, new RunnerAnswer(RunnerAnswerKind.Unreachable, "silo dead"), Time(now))));
                        break;
                    case WakeAt wake:
                        var woken = core;
                        At(Math.Max((wake.When - T0).TotalMilliseconds, now + 1), () => Feed(woken, () => woken.Wake(Time(now))));
                        break;
                }
            }
        }

        // Answers to calls made by a router activation that has since been replaced go nowhere.
        void Feed(RouterCore target, Action answer)
        {
            if (ReferenceEquals(target, core))
            {
                answer();
                Carry();
            }
        }

        int Id(string requestId) => int.Parse(requestId, CultureInfo.InvariantCulture);

        for (var i = 0; i < requests.Count; i++)
        {
            var index = i;
            At(requests[i].ArrivalMs, () =>
            {
                var request = requests[index];
                var ticket = new RequestTicket(new InferenceRequest(index.ToString(CultureInfo.InvariantCulture), "sim/app", "{}", request.Hinted ? request.Model : null), Time(now));
                var grain = grains[index] = new Grain(ticket, now);
                var answer = core.Enqueue(ticket, Time(now));
                if (answer.RunnerId is { } runnerId)
                {
                    grain.Start(runnerId, answer.Attempt);
                }

                Carry();
            });
        }

        for (var t = options.SweepInterval.TotalMilliseconds; t <= horizon; t += options.SweepInterval.TotalMilliseconds)
        {
            At(t, () =>
            {
                core.Tick(Time(now), scenario.DeathAtMs is { } death && now >= death + scenario.DetectionMs ? [.. silos.Where(s => s != deadSilo)] : silos);
                Carry();
            });
        }

        for (var t = Heartbeat.TotalMilliseconds; t <= horizon; t += Heartbeat.TotalMilliseconds)
        {
            At(t, () =>
            {
                foreach (var runner in runners.Values.Where(r => !Dead(r)))
                {
                    core.RunnerEvent(Describe(runner), Time(now));
                }

                Carry();
            });
        }

        if (scenario.DeathAtMs is { } dies)
        {
            At(dies, () =>
            {
                foreach (var job in runners.Values.Where(r => r.Silo == deadSilo).SelectMany(r => r.Running.Concat(r.Waiting)))
                {
                    grains[job.Request].Affected(now);
                }
            });
        }

        if (scenario.RestartAtMs is { } restart)
        {
            At(restart, () =>
            {
                core = new RouterCore("sim/app", new HintAffinityPolicy(), options, Time(now));

                // Each unfinished request reminds the new activation at its next resume tick.
                var interval = options.ResumeInterval.TotalMilliseconds;
                foreach (var grain in grains.Where(g => g is not null && g.Completed is null && g.Failed is null))
                {
                    grain.Affected(now);
                    var phase = (grain.AcceptedMs % interval + interval - now % interval) % interval;
                    At(now + phase, () => Resume(grain));
                }
            });
        }

        void Resume(Grain grain)
        {
            if (grain.Completed is not null || grain.Failed is not null)
            {
                return;
            }

            core.Resume(grain.Ticket, grain.RunnerId is null ? RequestState.Queued : RequestState.InProgress, grain.RunnerId, grain.Attempt, Time(now));
            Carry();
            if (now < horizon)
            {
                At(now + options.ResumeInterval.TotalMilliseconds, () => Resume(grain));
            }
        }

        while (events.TryDequeue(out var action, out var at))
        {
            now = at.Item1;
            action();
        }

        var done = grains.Where(g => g?.Completed is not null).ToList();
        var affected = grains.Where(g => g?.AffectedAt is not null).ToList();
        var recovery = affected.Where(g => g.Completed is not null).Select(g => g.Completed!.Value - g.AffectedAt!.Value).Order().ToArray();
        var latencies = done.Select(g => g.Completed!.Value - g.AcceptedMs).Order().ToArray();
        return new FailoverResult(scenario.Name, requests.Count, done.Count, grains.Count(g => g?.Failed is not null),
            grains.Count(g => g is null || (g.Completed is null && g.Failed is null)), retries, slotsFreed, affected.Count,
            recovery.Length == 0 ? 0 : Simulator.Percentile(recovery, 0.5), recovery.Length == 0 ? 0 : recovery[^1],
            Simulator.Percentile(latencies, 0.5), Simulator.Percentile(latencies, 0.99));
    }

    /// <summary>A request as its grain keeps it: it survives the router's restart.</summary>
    private sealed class Grain(RequestTicket ticket, double acceptedMs)
    {
        public RequestTicket Ticket { get; } = ticket;

        public double AcceptedMs { get; } = acceptedMs;

        public string? RunnerId { get; private set; }

        public int Attempt { get; private set; }

        public double? Completed { get; set; }

        public double? Failed { get; set; }

        public double? AffectedAt { get; private set; }

        public void Affected(double now) => AffectedAt ??= now;

        public void Start(string runnerId, int attempt)
        {
            if (attempt >= Attempt)
            {
                (RunnerId, Attempt) = (runnerId, attempt);
            }
        }

        public void Requeue(string runnerId, int attempt)
        {
            if (Attempt <= attempt && RunnerId == runnerId)
            {
                RunnerId = null;
            }
        }
    }

    private readonly record struct Job(int Request, int Attempt);

    /// <summary>A runner that runs one request at a time, keeps the others it accepted in order, and caches models (LRU within its memory).</summary>
    private sealed class Runner(string id, Workload workload)
    {
        private readonly LinkedList<string> _lru = new();
        private long _bytes;

        public string Id { get; } = id;

        public string Silo => Id.Split('/')[0];

        public List<Job> Running { get; } = [];

        public Queue<Job> Waiting { get; } = new();

        public void Accept(Job job) => Waiting.Enqueue(job);

        public bool Has(int request) => Running.Any(j => j.Request == request) || Waiting.Any(j => j.Request == request);

        public Job? StartNext()
        {
            if (Running.Count >= workload.MaxMultiplexing || !Waiting.TryDequeue(out var job))
            {
                return null;
            }

            Running.Add(job);
            return job;
        }

        /// <summary>Makes the model the most recently used; returns the load time (0 when it was cached).</summary>
        public double Use(string model)
        {
            if (_lru.Remove(model))
            {
                _lru.AddFirst(model);
                return 0;
            }

            while (_lru.Count > 0 && _bytes + workload.ModelBytes[model] > workload.RunnerMemoryBytes)
            {
                _bytes -= workload.ModelBytes[_lru.Last!.Value];
                _lru.RemoveLast();
            }

            _lru.AddFirst(model);
            _bytes += workload.ModelBytes[model];
            return workload.LoadMs(model);
        }

        public HintsEvent Describe(long sequence) => new(
            Id, Silo, Id.Split('/')[1], "sim/app", [.. _lru], Running.Count + Waiting.Count, workload.MaxMultiplexing, sequence,
            T0, HintsEventKind.Heartbeat, [], new CacheUsage(_bytes, workload.RunnerMemoryBytes, 0, 0, 0, 0, 0));
    }
}
