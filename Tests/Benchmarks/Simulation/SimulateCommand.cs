using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using FalHints.Benchmarks.Reporting;
using FalHints.Router.Placement;

namespace FalHints.Benchmarks.Simulation;

/// <summary><c>falhints-bench simulate</c>: every policy on the built-in workloads or a trace, side by side, with the bounds.</summary>
internal static class SimulateCommand
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public static Command Create()
    {
        var workload = new Option<string>("--workload") { Description = $"A built-in workload ({string.Join(", ", Workloads.Names)}) or 'all'.", DefaultValueFactory = _ => "all" };
        var trace = new Option<FileInfo?>("--trace") { Description = "A trace CSV: arrival_ms,hint,service_ms." };
        var models = new Option<FileInfo?>("--models") { Description = "The trace's models CSV: hint,bytes." };
        var runners = new Option<int>("--runners") { DefaultValueFactory = _ => 8 };
        var memory = new Option<long?>("--runner-memory") { Description = "Bytes of models a runner holds (default 8 GiB, 48 GiB with large models)." };
        var loadFixed = new Option<double>("--load-fixed-ms") { DefaultValueFactory = _ => 200 };
        var loadGbps = new Option<double>("--load-gbps") { DefaultValueFactory = _ => 2 };
        var requests = new Option<int>("--requests") { Description = "Requests per built-in workload.", DefaultValueFactory = _ => 20_000 };
        var modelCount = new Option<int>("--model-count") { Description = "Models in a built-in workload.", DefaultValueFactory = _ => 40 };
        var policies = new Option<string>("--policies") { Description = "Comma-separated policy names.", DefaultValueFactory = _ => string.Join(",", PlacementPolicies.Names) };
        var json = new Option<bool>("--json") { Description = "Print JSON instead of tables." };
        var seed = new Option<int>("--seed") { DefaultValueFactory = _ => 1 };
        var utilisation = new Option<double>("--utilisation")
        {
            Description = "Arrival rate of a built-in workload, as a share of the runners' capacity for inference alone (loads come on top).",
            DefaultValueFactory = _ => 0.6,
        };
        var plot = new Option<FileInfo?>("--plot")
        {
            Description = "Write a PNG of each workload's latency CDFs and hit rates (with several workloads, the workload's name is added to the file name).",
        };
        var command = new Command("simulate", "Compare placement policies in a discrete-event simulation driving the router's real dispatcher.")
        {
            workload, trace, models, runners, memory, loadFixed, loadGbps, requests, modelCount, policies, json, seed, utilisation, plot,
        };
        command.SetAction(parse =>
        {
            var names = parse.GetValue(policies)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (names.FirstOrDefault(n => !PlacementPolicies.Names.Contains(n)) is { } unknown)
            {
                Console.Error.WriteLine($"error: unknown policy '{unknown}'; known: {string.Join(", ", PlacementPolicies.Names)}.");
                return 1;
            }

            if (parse.GetValue(utilisation) is <= 0 or > 10)
            {
                Console.Error.WriteLine("error: --utilisation must be above 0 and at most 10.");
                return 1;
            }

            List<Workload> workloads;
            try
            {
                workloads = parse.GetValue(trace) is { } traceFile
                    ? [Workloads.FromTrace(traceFile.FullName, (parse.GetValue(models) ?? throw new FormatException("--trace needs --models.")).FullName,
                        parse.GetValue(runners), parse.GetValue(memory) ?? (8L << 30), parse.GetValue(loadFixed), parse.GetValue(loadGbps))]
                    : [.. (parse.GetValue(workload) == "all" ? Workloads.Names : [parse.GetValue(workload)!])
                        .Select(name => Workloads.Names.Contains(name) ? Workloads.BuiltIn(name, parse.GetValue(seed), parse.GetValue(requests), parse.GetValue(runners), parse.GetValue(modelCount), parse.GetValue(memory), parse.GetValue(utilisation))
                            : throw new FormatException($"Unknown workload '{name}'; known: {string.Join(", ", Workloads.Names)}."))];
            }
            catch (Exception ex) when (ex is FormatException or IOException)
            {
                Console.Error.WriteLine($"error: {ex.Message}");
                return 1;
            }

            var report = new List<object>();
            foreach (var work in workloads)
            {
                Console.Error.WriteLine($"{work.Name}: {work.Requests.Count:N0} requests, {work.Runners} runners, {work.ModelBytes.Count} models");
                var belady = Bounds.BeladyHitRate(work);
                var (floor50, floor99) = Bounds.LatencyFloor(work);
                var results = new List<PolicyResult>();
                foreach (var name in names)
                {
                    var before = GC.GetTotalMemory(forceFullCollection: true);
                    var clock = System.Diagnostics.Stopwatch.StartNew();
                    using (var line = new ProgressLine($"{work.Name} / {name}", work.Requests.Count))
                    {
                        results.Add(Simulator.Run(work, PlacementPolicies.Create(name, new SeededRandom(parse.GetValue(seed))), line));
                    }

                    Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"  {name}: {clock.Elapsed.TotalSeconds:0.0} s of wall time, {clock.Elapsed.TotalMicroseconds / work.Requests.Count:0.0} µs per request simulated, managed heap {(GC.GetTotalMemory(false) - before) / 1048576.0:0} MB above the start"));
                }

                if (parse.GetValue(plot) is { } plotFile)
                {
                    var file = workloads.Count == 1 ? plotFile.FullName
                        : Path.Combine(plotFile.DirectoryName!, $"{Path.GetFileNameWithoutExtension(plotFile.Name)}-{work.Name}{plotFile.Extension}");
                    LatencyPlot.Write(file, $"{work.Name}: {work.Requests.Count:N0} requests, {work.Runners} runners, {work.ModelBytes.Count} models (simulated)",
                        [.. results.Select(r => new PlotSeries(r.Policy, r.LatenciesMs, r.HitRate))], belady);
                    Console.Error.WriteLine($"  wrote {file}");
                }

                report.Add(new
                {
                    workload = work.Name,
                    bounds = new { belady_hit_rate = belady, latency_floor_p50_ms = floor50, latency_floor_p99_ms = floor99 },
                    policies = results.Select(r => new
                    {
                        policy = r.Policy, hit_rate = r.HitRate, hit_rate_of_bound = r.HitRate / belady, loads = r.Loads, evictions = r.Evictions,
                        p50_ms = r.P50Ms, p95_ms = r.P95Ms, p99_ms = r.P99Ms, mean_queue_ms = r.MeanQueueMs, throughput_rps = r.ThroughputRps, completed = r.Completed,
                    }),
                });
                if (!parse.GetValue(json))
                {
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"\n### {work.Name}: Belady bound {belady:P1} hits; latency floor p50 {floor50:0} ms, p99 {floor99:0} ms\n"));
                    Console.WriteLine("| policy | hit rate | of bound | loads | evictions | p50 (ms) | p95 (ms) | p99 (ms) | mean queue (ms) | throughput (req/s) |");
                    Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
                    foreach (var r in results)
                    {
                        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                            $"| {r.Policy} | {r.HitRate:P1} | {r.HitRate / belady:P0} | {r.Loads:N0} | {r.Evictions:N0} | {r.P50Ms:0} | {r.P95Ms:0} | {r.P99Ms:0} | {r.MeanQueueMs:0} | {r.ThroughputRps:0.0} |"));
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
}
