using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using FalHints.Benchmarks.Reporting;
using FalHints.Router.Placement;

namespace FalHints.Benchmarks.Simulation;

/// <summary>
/// <c>falhints-bench simulate</c>: every policy on the built-in workloads (several seeds, medians with the range) or a
/// trace, side by side, with the bounds: Belady's hit rate, the never-wait ceiling, the capacity bound.
/// </summary>
internal static class SimulateCommand
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    /// <summary>Runners beyond which the never-wait ceiling is not computed.</summary>
    private const int MaxCeilingRunners = 64;

    /// <summary>The policies that never make a request wait while a runner is free (fal's contract).</summary>
    private static readonly HashSet<string> NeverWait = new(StringComparer.Ordinal)
    {
        PlacementPolicies.HintAffinity, PlacementPolicies.FalDocumented, PlacementPolicies.RoundRobin, PlacementPolicies.Random, PlacementPolicies.LeastLoaded,
    };

    public static Command Create()
    {
        var workload = new Option<string>("--workload") { Description = $"A built-in workload ({string.Join(", ", Workloads.Names)}) or 'all'.", DefaultValueFactory = _ => "all" };
        var trace = new Option<FileInfo?>("--trace") { Description = "A trace CSV: arrival_ms,hint,service_ms[,model] (with the model column, an empty hint is an unhinted request for that model)." };
        var models = new Option<FileInfo?>("--models") { Description = "The trace's models CSV: hint,bytes." };
        var writeTrace = new Option<FileInfo?>("--write-trace") { Description = "Write the (first) built-in workload as a trace with a model column, and its models beside it (NAME.models.csv), then stop." };
        var runners = new Option<int>("--runners") { DefaultValueFactory = _ => 8 };
        var memory = new Option<long?>("--runner-memory") { Description = "Bytes of models a runner holds (default 8 GiB, 48 GiB with large models)." };
        var loadFixed = new Option<double>("--load-fixed-ms") { DefaultValueFactory = _ => 200 };
        var loadGbps = new Option<double>("--load-gbps") { DefaultValueFactory = _ => 2 };
        var requests = new Option<int>("--requests") { Description = "Requests per built-in workload.", DefaultValueFactory = _ => 20_000 };
        var modelCount = new Option<int>("--model-count") { Description = "Models in a built-in workload.", DefaultValueFactory = _ => 40 };
        var sizes = new Option<ModelSizes>("--models-size") { Description = "Model sizes of the built-in workloads: Standard (0.5-2 GiB) or Large (4-12 GiB); flash-crowd is always Large.", DefaultValueFactory = _ => ModelSizes.Standard };
        var policies = new Option<string>("--policies") { Description = "Comma-separated policy names.", DefaultValueFactory = _ => string.Join(",", PlacementPolicies.Names) };
        var json = new Option<bool>("--json") { Description = "Print JSON instead of tables." };
        var seed = new Option<int>("--seed") { Description = "The first seed.", DefaultValueFactory = _ => 1 };
        var seeds = new Option<int>("--seeds") { Description = "Seeds per built-in workload (medians with the range are reported).", DefaultValueFactory = _ => 5 };
        var utilisation = new Option<string>("--utilisation")
        {
            Description = "Arrival rate of a built-in workload as a share of the runners' capacity for inference alone (loads come on top); a comma-separated list sweeps it (e.g. 0.15,0.3,0.6,0.9,1.1,1.2).",
            DefaultValueFactory = _ => "0.6",
        };
        var hostTier = new Option<double>("--host-tier")
        {
            Description = "Host memory per runner for models evicted from its device, as a multiple of its device memory (0, the default: no host tier; 2: twice the device memory). A model found there is promoted (size over --host-gbps) instead of loaded.",
            DefaultValueFactory = _ => 0,
        };
        var hostGbps = new Option<double>("--host-gbps")
        {
            Description = "Host-to-device bandwidth of a promotion from the host tier, in GB/s.",
            DefaultValueFactory = _ => Workload.DefaultHostGbps,
        };
        var plot = new Option<FileInfo?>("--plot")
        {
            Description = "Write a PNG of each workload's latency CDFs and hit rates for the first seed (with several workloads, the workload's name is added to the file name).",
        };
        var loadCauses = new Option<bool>("--load-causes")
        {
            Description = "After each table, the loads (from storage and from host memory) of each policy by cause: first loads, background or request copies of a model some runner holds, reloads of a model whose last copy was evicted (by what); then where the runners' time went (inference, loads, promotions, idle while requests wait at the router, idle with none waiting there).",
        };
        var command = new Command("simulate", "Compare placement policies in a discrete-event simulation driving the router's real dispatcher.")
        {
            workload, trace, models, writeTrace, runners, memory, loadFixed, loadGbps, requests, modelCount, sizes, policies, json, seed, seeds, utilisation, hostTier, hostGbps, plot, loadCauses,
        };
        command.SetAction(parse =>
        {
            var names = parse.GetValue(policies)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (names.FirstOrDefault(n => !PlacementPolicies.Names.Contains(n)) is { } unknown)
            {
                Console.Error.WriteLine($"error: unknown policy '{unknown}'; known: {string.Join(", ", PlacementPolicies.Names)}.");
                return 1;
            }

            var loads = new List<double>();
            foreach (var text in parse.GetValue(utilisation)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var u) || u is <= 0 or > 10)
                {
                    Console.Error.WriteLine($"error: --utilisation takes numbers above 0 and at most 10, not '{text}'.");
                    return 1;
                }

                loads.Add(u);
            }

            if (parse.GetValue(seeds) < 1)
            {
                Console.Error.WriteLine("error: --seeds must be at least 1.");
                return 1;
            }

            var hostShare = parse.GetValue(hostTier);
            var hostRate = parse.GetValue(hostGbps);
            if (!double.IsFinite(hostShare) || hostShare < 0 || !double.IsFinite(hostRate) || hostRate <= 0)
            {
                Console.Error.WriteLine("error: --host-tier must be a number of at least 0 and --host-gbps a number above 0.");
                return 1;
            }

            // The host tier, when asked for: memory per runner as a share of its device memory, promotions at the given bandwidth.
            Workload Tiered(Workload work) => hostShare == 0 ? work : work with { HostMemoryBytes = (long)(hostShare * work.RunnerMemoryBytes), HostGbps = hostRate };
            var tierTitle = hostShare == 0 ? "" : string.Create(CultureInfo.InvariantCulture, $", host tier {hostShare:0.##}x device memory at {hostRate:0.#} GB/s");

            // Each case is one workload at one load, with one workload per seed.
            var cases = new List<(string Title, List<Workload> Seeds)>();
            try
            {
                if (parse.GetValue(trace) is { } traceFile)
                {
                    var work = Workloads.FromTrace(traceFile.FullName, (parse.GetValue(models) ?? throw new FormatException("--trace needs --models.")).FullName,
                        parse.GetValue(runners), parse.GetValue(memory) ?? (8L << 30), parse.GetValue(loadFixed), parse.GetValue(loadGbps));
                    cases.Add(($"trace {work.Name}{tierTitle}", [Tiered(work)]));
                }
                else
                {
                    var workloadNames = parse.GetValue(workload) == "all" ? Workloads.Names : [parse.GetValue(workload)!];
                    foreach (var name in workloadNames)
                    {
                        if (!Workloads.Names.Contains(name))
                        {
                            throw new FormatException($"Unknown workload '{name}'; known: {string.Join(", ", Workloads.Names)}.");
                        }

                        foreach (var u in loads)
                        {
                            var size = name == "flash-crowd" ? ModelSizes.Large : parse.GetValue(sizes);
                            cases.Add((string.Create(CultureInfo.InvariantCulture, $"{name}, {u:P0} load{(size == ModelSizes.Large ? ", large models" : "")}{tierTitle}"),
                                [.. Enumerable.Range(parse.GetValue(seed), parse.GetValue(seeds)).Select(s => Tiered(Workloads.BuiltIn(name, s, parse.GetValue(requests),
                                    parse.GetValue(runners), parse.GetValue(modelCount), parse.GetValue(memory), u, size)))]));
                        }
                    }

                    if (parse.GetValue(writeTrace) is { } target)
                    {
                        var modelsFile = Path.Combine(target.DirectoryName!, $"{Path.GetFileNameWithoutExtension(target.Name)}.models.csv");
                        Workloads.WriteTrace(cases[0].Seeds[0], target.FullName, modelsFile);
                        Console.Error.WriteLine($"wrote {target.FullName} and {modelsFile}");
                        return 0;
                    }
                }
            }
            catch (Exception ex) when (ex is FormatException or IOException)
            {
                Console.Error.WriteLine($"error: {ex.Message}");
                return 1;
            }

            var report = new List<object>();
            foreach (var (title, works) in cases)
            {
                var first = works[0];
                Console.Error.WriteLine($"{title}: {first.Requests.Count:N0} requests, {first.Runners} runners, {first.ModelBytes.Count} models, {works.Count} seed(s)");
                var belady = works.Select(Bounds.BeladyHitRate).ToList();
                var capacity = works.Select(Bounds.CapacityBoundRps).ToList();
                var servable = works.All(Bounds.Servable);
                // The ceiling replays the workload once per candidate layout: beyond a few dozen runners that costs far more than the policies do.
                var ceilingScale = first.Runners <= MaxCeilingRunners;
                var ceiling = servable && ceilingScale ? works.Select(Bounds.NeverWaitCeiling).ToList() : null;
                var (floor50, floor99) = Bounds.LatencyFloor(first);
                var results = new List<(string Policy, List<PolicyResult> Runs)>();
                foreach (var name in names)
                {
                    var clock = System.Diagnostics.Stopwatch.StartNew();
                    var runs = new List<PolicyResult>();
                    for (var s = 0; s < works.Count; s++)
                    {
                        using var line = new ProgressLine($"{title} / {name} / seed {s + parse.GetValue(seed)}", works[s].Requests.Count);
                        runs.Add(Simulator.Run(works[s], PlacementPolicies.Create(name, new SeededRandom(s + parse.GetValue(seed))), line));
                    }

                    results.Add((name, runs));
                    Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"  {name}: {clock.Elapsed.TotalSeconds:0.0} s of wall time, {clock.Elapsed.TotalMicroseconds / works.Sum(w => w.Requests.Count):0.0} µs per request simulated, of which placement (the router's dispatcher and policy) {runs.Sum(r => r.PlacementTime.TotalMicroseconds) / works.Sum(w => w.Requests.Count):0.0} µs"));
                }

                if (parse.GetValue(plot) is { } plotFile)
                {
                    var file = cases.Count == 1 ? plotFile.FullName
                        : Path.Combine(plotFile.DirectoryName!, $"{Path.GetFileNameWithoutExtension(plotFile.Name)}-{first.Name}{plotFile.Extension}");
                    LatencyPlot.Write(file, $"{title}: {first.Requests.Count:N0} requests, {first.Runners} runners, {first.ModelBytes.Count} models (simulated, seed {parse.GetValue(seed)})",
                        [.. results.Select(r => new PlotSeries(r.Policy, r.Runs[0].LatenciesMs, r.Runs[0].HitRate))], belady[0]);
                    Console.Error.WriteLine($"  wrote {file}");
                }

                report.Add(new
                {
                    workload = title,
                    seeds = works.Count,
                    bounds = new
                    {
                        belady_hit_rate = Median(belady), never_wait_ceiling = ceiling is null ? (double?)null : Median(ceiling),
                        capacity_bound_rps = Median(capacity), servable, latency_floor_p50_ms = floor50, latency_floor_p99_ms = floor99,
                    },
                    policies = results.Select(r => new
                    {
                        policy = r.Policy, never_waits = NeverWait.Contains(r.Policy),
                        hit_rate = Range(r.Runs.Select(x => x.HitRate)), hit_rate_of_belady = Range(r.Runs.Select((x, i) => x.HitRate / belady[i])),
                        hit_rate_of_ceiling = ceiling is null ? null : Range(r.Runs.Select((x, i) => x.HitRate / ceiling[i])),
                        p50_ms = Range(r.Runs.Select(x => x.P50Ms)), p99_ms = Range(r.Runs.Select(x => x.P99Ms)),
                        throughput_rps = Range(r.Runs.Select(x => x.ThroughputRps)), throughput_of_capacity = Range(r.Runs.Select((x, i) => x.ThroughputRps / capacity[i])),
                        loads = Range(r.Runs.Select(x => (double)x.Loads)), prewarms = Range(r.Runs.Select(x => (double)x.Prewarms)),
                        load_causes = CauseNames(r.Runs).ToDictionary(c => c, c => Range(r.Runs.Select(x => (double)x.LoadCauses.GetValueOrDefault(c)))),
                        promotions = Range(r.Runs.Select(x => (double)x.Promotions)),
                        runner_time_share = new
                        {
                            serving = Range(r.Runs.Select(x => x.Time.ServingMs / x.Time.TotalMs)),
                            loading = Range(r.Runs.Select(x => x.Time.LoadingMs / x.Time.TotalMs)),
                            promoting = Range(r.Runs.Select(x => x.Time.PromotingMs / x.Time.TotalMs)),
                            idle_while_requests_wait_at_router = Range(r.Runs.Select(x => x.Time.IdleWaitingMs / x.Time.TotalMs)),
                            idle_none_waiting_at_router = Range(r.Runs.Select(x => x.Time.IdleEmptyMs / x.Time.TotalMs)),
                        },
                    }),
                });
                if (!parse.GetValue(json))
                {
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"\n### {title}\n\nBelady {Median(belady):P2} hits; never-wait ceiling {(ceiling is null ? (ceilingScale ? "n/a (not servable)" : $"not computed (more than {MaxCeilingRunners} runners)") : Median(ceiling).ToString("P1", CultureInfo.InvariantCulture))}; capacity bound {Median(capacity):0.0} req/s ({(servable ? "servable" : "overloaded")}); latency floor p50 {floor50:0} ms, p99 {floor99:0} ms; {works.Count} seed(s), medians (min-max)\n"));
                    // With a host tier, loads count those from storage and a column gives the promotions from host memory.
                    var tiered = first.HasHostTier;
                    Console.WriteLine($"| policy | never waits | hit rate | of Belady | of ceiling | p50 (ms) | p99 (ms) | throughput (req/s) | of capacity | loads | of them prewarms |{(tiered ? " promotions |" : "")}");
                    Console.WriteLine($"|---|:-:|---:|---:|---:|---:|---:|---:|---:|---:|---:|{(tiered ? "---:|" : "")}");
                    foreach (var (policy, runs) in results)
                    {
                        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                            $"| {policy} | {(NeverWait.Contains(policy) ? "yes" : "")} | {Cell(runs.Select(x => x.HitRate * 100), "0.00")} % | {Median(runs.Select((x, i) => x.HitRate / belady[i])):P0} | {(ceiling is null ? "" : Median(runs.Select((x, i) => x.HitRate / ceiling[i])).ToString("P1", CultureInfo.InvariantCulture))} | {Cell(runs.Select(x => x.P50Ms), "0")} | {Cell(runs.Select(x => x.P99Ms), "0")} | {Cell(runs.Select(x => x.ThroughputRps), "0.0")} | {Median(runs.Select((x, i) => x.ThroughputRps / capacity[i])):P0} | {Median(runs.Select(x => (double)x.Loads)):N0} | {Median(runs.Select(x => (double)x.Prewarms)):N0} |{(tiered ? $" {Median(runs.Select(x => (double)x.Promotions)):N0} |" : "")}"));
                    }

                    if (parse.GetValue(loadCauses))
                    {
                        Console.WriteLine("\nLoads by cause (medians over the seeds):\n");
                        foreach (var (policy, runs) in results)
                        {
                            var named = CauseNames(runs).Select(c => string.Create(CultureInfo.InvariantCulture, $"{c} {Median(runs.Select(x => (double)x.LoadCauses.GetValueOrDefault(c))):0.#}"));
                            Console.WriteLine($"- {policy}: {string.Join("; ", named)}");
                        }

                        Console.WriteLine("\nRunner time (summed over the runners' slots, from the first arrival to the end of the run; medians over the seeds):\n");
                        foreach (var (policy, runs) in results)
                        {
                            string Share(Func<RunnerTime, double> part) =>
                                string.Create(CultureInfo.InvariantCulture, $"{Median(runs.Select(x => part(x.Time) / x.Time.TotalMs)):P1} ({Median(runs.Select(x => part(x.Time) / 1000)):0} s)");
                            Console.WriteLine($"- {policy}: inference {Share(t => t.ServingMs)}; loads {Share(t => t.LoadingMs)}; promotions {Share(t => t.PromotingMs)}; idle while requests wait at the router {Share(t => t.IdleWaitingMs)}; idle, none waiting at the router {Share(t => t.IdleEmptyMs)}");
                        }
                    }
                }
            }

            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(report, Indented));
            }

            return 0;
        });
        return command;
    }

    /// <summary>The load causes any of <paramref name="runs"/> counted, in order.</summary>
    private static IEnumerable<string> CauseNames(IEnumerable<PolicyResult> runs) =>
        runs.SelectMany(x => x.LoadCauses.Keys).Distinct().Order(StringComparer.Ordinal);

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    private static object Range(IEnumerable<double> values)
    {
        var list = values.ToList();
        return new { median = Median(list), min = list.Min(), max = list.Max() };
    }

    /// <summary>The median, with the range when there are several values.</summary>
    private static string Cell(IEnumerable<double> values, string format)
    {
        var list = values.ToList();
        var median = Median(list).ToString(format, CultureInfo.InvariantCulture);
        return list.Count == 1 ? median : $"{median} ({list.Min().ToString(format, CultureInfo.InvariantCulture)}-{list.Max().ToString(format, CultureInfo.InvariantCulture)})";
    }
}
