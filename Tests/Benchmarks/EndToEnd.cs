using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using FalHints.Benchmarks.Reporting;
using FalHints.Client.Apps;
using FalHints.Client.Contracts;
using FalHints.Client.Requests;
using FalHints.Host.Commands;
using FalHints.Host.Hosting;
using FalHints.Router.Placement;
using FalHints.Runner.Models;
using FalHints.Runner.Pipelines;
using Microsoft.Extensions.DependencyInjection;

namespace FalHints.Benchmarks;

/// <summary>One policy's figures from a real run, with the weights loader its runners used.</summary>
public sealed record EndToEndResult(
    string Loader, string Policy, int Requests, int Completed, int Failed, double HitRate, long Loads, long Evictions,
    double P50Ms, double P95Ms, double P99Ms, double MeanMs, double ThroughputRps, double[] LatenciesMs)
{
    /// <summary>Each request in sequence order: what it asked for, where it ran, and what it cost.</summary>
    public IReadOnlyList<EndToEndRequest> Log { get; init; } = [];

    /// <summary>Pipelines the runners brought back from their host tier (GPU runners only).</summary>
    public long Promotions { get; init; }

    /// <summary>Where a hit's time goes, measured after the run on its node; null when no runner held the probe's model.</summary>
    public HitBreakdown? HitAlone { get; init; }
}

/// <summary>
/// A hit taken apart, after a policy's run on the same node with nothing else in flight, the two paths alternating:
/// <paramref name="DirectMs"/> is the median of a request sent straight to a runner holding the model (the render plus
/// one grain call), <paramref name="RoutedMs"/> the median of the same request through the client SDK and the router
/// (submission, queue, dispatch, completion) that hit on that runner, over <paramref name="Samples"/> of each.
/// </summary>
public sealed record HitBreakdown(string Model, int Samples, double DirectMs, double RoutedMs)
{
    /// <summary>What the router's path adds to a hit: the routed median less the direct one.</summary>
    public double RoutingMs => RoutedMs - DirectMs;
}

/// <summary>One request of an end-to-end run: when it was sent (ms after the policy's start), its model, runner, hit, latency.</summary>
public sealed record EndToEndRequest(int Index, double SentMs, string Model, string? RunnerId, bool HintHit, double LatencyMs, string? Error);

/// <summary>
/// <c>falhints-bench e2e</c>: a real node in this process (silo, router, runner grains with real TorchSharp pipelines
/// loaded from a model store on disk), driven with the any-model app under each placement policy in turn, the same
/// Zipf-distributed request sequence for each, every policy starting from cold runners; with several weights loaders,
/// every policy runs with each loader in turn, so that loaders are compared in one run.
/// </summary>
public static class EndToEnd
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public static Command Create()
    {
        var runners = new Option<int>("--runners") { Description = "Runner grains.", DefaultValueFactory = _ => 4 };
        var device = new Option<string>("--device") { Description = "cpu, or cuda to put every runner on GPU 0 (as cuda:0.N slots).", DefaultValueFactory = _ => "cpu" };
        var models = new Option<int>("--models") { Description = "Models in the store.", DefaultValueFactory = _ => 12 };
        var modelSize = new Option<string>("--model-size") { Description = "Size of each model, or MIN-MAX for sizes spread evenly between (e.g. 512MB-2GB).", DefaultValueFactory = _ => "64MB" };
        var perRunner = new Option<double>("--models-per-runner") { Description = "Budget of each runner, in models of the mean size.", DefaultValueFactory = _ => 2 };
        var requests = new Option<int>("--requests") { Description = "Requests per policy.", DefaultValueFactory = _ => 600 };
        var concurrency = new Option<int?>("--concurrency")
        {
            Description = "Requests in flight at once (default: half the runners, so a request usually finds a free runner, as at moderate load).",
        };
        var zipf = new Option<double>("--zipf") { Description = "Zipf exponent of model popularity.", DefaultValueFactory = _ => 1.0 };
        var policies = new Option<string>("--policies") { Description = "Comma-separated policy names, run in this order.", DefaultValueFactory = _ => "HintAffinity,WaitForHolder,RoundRobin" };
        var store = new Option<DirectoryInfo?>("--store") { Description = "Model store to fill and reuse (default: a temporary folder, deleted afterwards)." };
        var loaders = new Option<string>("--loaders")
        {
            Description = $"Comma-separated weights loaders ({string.Join(", ", Enum.GetNames<WeightLoader>())}), each run with every policy, in this order.",
            DefaultValueFactory = _ => nameof(WeightLoader.Direct),
        };
        var hostBudget = new Option<string?>("--host-budget") { Description = "Host-tier budget of each GPU runner, e.g. 8GB, or 0 for none (default: the runners' default)." };
        var seed = new Option<int>("--seed") { DefaultValueFactory = _ => 1 };
        var warmup = new Option<int>("--warmup") { Description = "Requests of a throwaway run on a fresh node before the measured ones (0: none).", DefaultValueFactory = _ => 40 };
        var json = new Option<bool>("--json") { Description = "Print JSON instead of a table." };
        var plot = new Option<FileInfo?>("--plot") { Description = "Write a PNG of the latency CDFs and hit rates." };
        var requestLog = new Option<FileInfo?>("--request-log") { Description = "Write every request (loader, policy, index, sent_ms, model, runner, hint_hit, latency_ms, error) as CSV." };
        var command = new Command("e2e", "End to end on a real node: TorchSharp pipelines loaded from the model store, each policy in turn on the same requests.")
        {
            runners, device, models, modelSize, perRunner, requests, concurrency, zipf, policies, store, seed, warmup, json, plot, requestLog, loaders, hostBudget,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var names = parse.GetValue(policies)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (names.FirstOrDefault(n => !PlacementPolicies.Names.Contains(n)) is { } unknown)
            {
                await Console.Error.WriteLineAsync($"error: unknown policy '{unknown}'; known: {string.Join(", ", PlacementPolicies.Names)}.");
                return 1;
            }

            var loaderNames = parse.GetValue(loaders)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (loaderNames.FirstOrDefault(n => !Enum.TryParse<WeightLoader>(n, out _)) is { } badLoader)
            {
                await Console.Error.WriteLineAsync($"error: unknown loader '{badLoader}'; known: {string.Join(", ", Enum.GetNames<WeightLoader>())}.");
                return 1;
            }

            long? hostBytes = null;
            if (parse.GetValue(hostBudget) is { } hostText)
            {
                try
                {
                    hostBytes = hostText == "0" ? 0 : ByteSize.Parse(hostText);
                }
                catch (FormatException ex)
                {
                    await Console.Error.WriteLineAsync($"error: --host-budget: {ex.Message}");
                    return 1;
                }
            }

            var settings = new Settings(parse.GetValue(runners), parse.GetValue(device)!, parse.GetValue(models), parse.GetValue(modelSize)!,
                parse.GetValue(perRunner), parse.GetValue(requests), parse.GetValue(concurrency) ?? Math.Max(1, parse.GetValue(runners) / 2), parse.GetValue(zipf),
                parse.GetValue(seed), parse.GetValue(warmup))
            {
                Loaders = [.. loaderNames.Select(Enum.Parse<WeightLoader>)],
                HostBudgetBytes = hostBytes,
            };
            if (settings.Validate() is { } problem)
            {
                await Console.Error.WriteLineAsync($"error: {problem}");
                return 1;
            }

            var root = parse.GetValue(store)?.FullName ?? Directory.CreateTempSubdirectory("falhints-e2e-store-").FullName;
            try
            {
                // A table is printed row by row, so a long run that is cut short still leaves the policies it finished.
                var table = !parse.GetValue(json);
                if (table)
                {
                    Console.WriteLine(TableHeader);
                }

                var (results, specs, budget) = await RunAsync(settings, names, root, table ? r => Console.WriteLine(Row(r)) : null, cancellationToken);
                if (table)
                {
                    PrintRatios(results);
                }
                else
                {
                    PrintJson(results, settings, specs, budget);
                }

                if (parse.GetValue(plot) is { } plotFile)
                {
                    LatencyPlot.Write(plotFile.FullName,
                        string.Create(CultureInfo.InvariantCulture, $"end to end on {settings.Device}: {settings.Runners} runners, {specs.Length} models, {settings.Requests} requests, Zipf {settings.Zipf}"),
                        [.. results.Select(r => new PlotSeries(settings.Loaders.Count > 1 ? $"{r.Policy} ({r.Loader})" : r.Policy, r.LatenciesMs, r.HitRate))]);
                    await Console.Error.WriteLineAsync($"wrote {plotFile.FullName}");
                }

                if (parse.GetValue(requestLog) is { } csv)
                {
                    await File.WriteAllLinesAsync(csv.FullName, ["loader,policy,index,sent_ms,model,runner,hint_hit,latency_ms,error",
                        .. results.SelectMany(r => r.Log.Select(q => string.Create(CultureInfo.InvariantCulture,
                            $"{r.Loader},{r.Policy},{q.Index},{q.SentMs:0.0},{q.Model},{q.RunnerId},{(q.HintHit ? 1 : 0)},{q.LatencyMs:0.0},{q.Error}")))], cancellationToken);
                    await Console.Error.WriteLineAsync($"wrote {csv.FullName}");
                }

                return results.Any(r => r.Failed > 0) ? 2 : 0;
            }
            finally
            {
                if (parse.GetValue(store) is null)
                {
                    Directory.Delete(root, recursive: true);
                }
            }
        });
        return command;
    }

    /// <summary>
    /// Fills the store at <paramref name="root"/> (models it already has are kept) and runs each policy in turn on a
    /// fresh node; returns the figures, the models and the budget each runner had.
    /// </summary>
    public static async Task<(List<EndToEndResult> Results, DemoModelSpec[] Models, long BudgetBytes)> RunAsync(
        Settings settings, IReadOnlyList<string> policies, string root, Action<EndToEndResult>? finished, CancellationToken cancellationToken)
    {
        var (minBytes, maxBytes) = ParseSizes(settings.ModelSize);
        var specs = Enumerable.Range(0, settings.Models)
            .Select(i => new DemoModelSpec($"e2e-{settings.ModelSize.ToLowerInvariant()}/model-{i:D2}", settings.Models == 1 ? minBytes : minBytes + (maxBytes - minBytes) * i / (settings.Models - 1)))
            .ToArray();
        var budget = (long)(settings.ModelsPerRunner * specs.Average(s => s.Bytes) * 1.1);
        Fill(root, specs);
        var sequence = Sequence(specs, settings);
        await Console.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
            $"{settings.Runners} runners on {settings.Device}, budget {ByteSize.Format(budget)} each; {specs.Length} models of {ByteSize.Format(minBytes)} to {ByteSize.Format(maxBytes)}; {settings.Requests} requests per policy, {settings.Concurrency} in flight, Zipf {settings.Zipf}"));
        // A throwaway run first, so that the first policy measured does not pay for the process warming up (code
        // compiled on first use, LibTorch's first allocations, the model files' first reads).
        if (settings.Warmup > 0)
        {
            await RunPolicyAsync(settings.Loaders[0], policies[0], root, budget, sequence[..Math.Min(settings.Warmup, sequence.Length)], settings, cancellationToken, "warm-up");
        }

        var results = new List<EndToEndResult>();
        foreach (var loader in settings.Loaders)
        {
            foreach (var policy in policies)
            {
                results.Add(await RunPolicyAsync(loader, policy, root, budget, sequence, settings, cancellationToken));
                finished?.Invoke(results[^1]);
            }
        }

        return (results, specs, budget);
    }

    /// <summary>What an end-to-end run uses: runners, device, models, load and popularity.</summary>
    public sealed record Settings(int Runners, string Device, int Models, string ModelSize, double ModelsPerRunner, int Requests, int Concurrency, double Zipf, int Seed, int Warmup = 0)
    {
        /// <summary>The weights loaders to run every policy with, in order.</summary>
        public IReadOnlyList<WeightLoader> Loaders { get; init; } = [WeightLoader.Direct];

        /// <summary>The host-tier budget of each GPU runner; null: the runners' default.</summary>
        public long? HostBudgetBytes { get; init; }

        public string? Validate() =>
            Runners is < 1 or > 64 ? "--runners must be between 1 and 64."
            : Device is not ("cpu" or "cuda") ? $"--device must be cpu or cuda, not '{Device}'."
            : Models < 1 ? "--models must be at least 1."
            : ModelsPerRunner <= 0 ? "--models-per-runner must be positive."
            : Requests < 1 || Concurrency < 1 ? "--requests and --concurrency must be at least 1."
            : Warmup < 0 ? "--warmup must not be negative."
            : Loaders.Count == 0 ? "--loaders names no loader."
            : HostBudgetBytes < 0 ? "--host-budget must not be negative."
            : Zipf < 0 ? "--zipf must not be negative."
            : Device == "cuda" && !TorchSharp.torch.cuda.is_available() ? "--device cuda: CUDA is not available to TorchSharp here."
            : TrySizes(ModelSize);

        private static string? TrySizes(string text)
        {
            try
            {
                _ = ParseSizes(text);
                return null;
            }
            catch (FormatException ex)
            {
                return $"--model-size: {ex.Message}";
            }
        }
    }

    private static (long Min, long Max) ParseSizes(string text)
    {
        var parts = text.Split('-', StringSplitOptions.TrimEntries);
        var min = ByteSize.Parse(parts[0]);
        var max = parts.Length == 2 ? ByteSize.Parse(parts[1]) : min;
        return parts.Length > 2 || max < min ? throw new FormatException($"'{text}' is not a size or a MIN-MAX range of sizes.") : (min, max);
    }

    private static void Fill(string root, DemoModelSpec[] specs)
    {
        var modelStore = new ModelStore(root);
        using var line = new ProgressLine("filling the model store", specs.Sum(s => s.Bytes));
        DemoModels.Fill(modelStore, specs, new SyncProgress<DemoModelProgress>(p => line.Report(p.BytesDone, p.ModelId)));
    }

    /// <summary>The requests' models: Zipf over the models in a seeded shuffle, so popularity does not follow size.</summary>
    private static string[] Sequence(DemoModelSpec[] specs, Settings settings)
    {
        var random = new Random(settings.Seed);
        var ranked = specs.Select(s => s.Id).ToArray();
        random.Shuffle(ranked);
        var zipf = new Zipf(ranked.Length, settings.Zipf, random);
        return [.. Enumerable.Range(0, settings.Requests).Select(_ => ranked[zipf.Next()])];
    }

    private static async Task<EndToEndResult> RunPolicyAsync(
        WeightLoader loader, string policy, string root, long budget, string[] sequence, Settings settings, CancellationToken cancellationToken, string? label = null)
    {
        var configuration = BenchNode.Settings("e2e", root);
        configuration["FalHints:Runners:PipelineBudgetBytes"] = budget.ToString(CultureInfo.InvariantCulture);
        configuration["FalHints:Runners:WeightLoader"] = loader.ToString();
        if (settings.HostBudgetBytes is { } hostBudget)
        {
            configuration["FalHints:Runners:HostBudgetBytes"] = hostBudget.ToString(CultureInfo.InvariantCulture);
        }
        configuration["FalHints:Router:Policy"] = policy;
        configuration["FalHints:Router:RandomSeed"] = settings.Seed.ToString(CultureInfo.InvariantCulture);

        // The benchmark reports failed requests itself; a node stopping logs expected placement retries.
        configuration["Logging:LogLevel:Default"] = "Error";
        configuration["Logging:LogLevel:Orleans"] = "Error";
        configuration["Logging:LogLevel:Polly"] = "None";
        var devices = settings.Device == "cuda"
            ? Enumerable.Range(0, settings.Runners).Select(i => $"cuda:0.{i}").ToArray()
            : Enumerable.Range(0, settings.Runners).Select(i => $"cpu:{i}").ToArray();
        for (var i = 0; i < devices.Length; i++)
        {
            configuration[$"FalHints:Runners:Devices:{i}"] = devices[i];
        }

        var host = FalHintsWebHost.Build(configuration, cancellationToken);
        await host.StartAsync(cancellationToken);
        try
        {
            var grains = host.Services.GetRequiredService<IGrainFactory>();
            var client = new FalHintsClient(grains);
            var router = grains.GetGrain<IRouterGrain>(AnyModel.AppId);
            var waited = Stopwatch.StartNew();
            while ((await router.GetSnapshotAsync()).Runners.Length < devices.Length)
            {
                if (waited.Elapsed > TimeSpan.FromSeconds(60))
                {
                    throw new TimeoutException($"The router did not see {devices.Length} runners within 60 s.");
                }

                await Task.Delay(100, cancellationToken);
            }

            var latencies = new double[sequence.Length];
            var log = new EndToEndRequest[sequence.Length];
            var hits = 0;
            var failed = 0;
            var done = 0;
            var next = -1;
            using var line = new ProgressLine(label ?? (settings.Loaders.Count > 1 ? $"{policy} ({loader})" : policy), sequence.Length);
            var clock = Stopwatch.StartNew();
            await Task.WhenAll(Enumerable.Range(0, settings.Concurrency).Select(async _ =>
            {
                int i;
                while ((i = Interlocked.Increment(ref next)) < sequence.Length)
                {
                    var input = JsonSerializer.Serialize(new AnyModelInput(sequence[i], $"a lighthouse, request {i}"), FalJson.Options);
                    var started = Stopwatch.GetTimestamp();
                    var result = await client.SubmitAsync(AnyModel.AppId, input, sequence[i], cancellationToken);
                    latencies[i] = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                    log[i] = new EndToEndRequest(i, clock.Elapsed.TotalMilliseconds - latencies[i], sequence[i], result.RunnerId, result.HintHit, latencies[i], result.Error?.Code);
                    if (result.Error is { } error)
                    {
                        Interlocked.Increment(ref failed);
                        await Console.Error.WriteLineAsync($"  request {i} failed: {error.Code}: {error.Message}");
                    }
                    else if (result.HintHit)
                    {
                        Interlocked.Increment(ref hits);
                    }

                    var finished = Interlocked.Increment(ref done);
                    line.Report(finished, string.Create(CultureInfo.InvariantCulture, $"{Volatile.Read(ref hits) / (double)finished:P0} hits"));
                }
            }));
            clock.Stop();

            long loads = 0, evictions = 0, promotions = 0;
            foreach (var deviceName in devices)
            {
                var status = await grains.GetGrain<IRunnerGrain>($"e2e/{deviceName}").GetStatusAsync();
                foreach (var app in status.Apps.Where(a => a.AppId == AnyModel.AppId))
                {
                    loads += app.Cache.Loads;
                    evictions += app.Cache.Evictions;
                    promotions += app.Cache.Promotions;
                }
            }

            var sorted = latencies.Order().ToArray();
            var breakdown = label is null ? await BreakDownHitAsync(grains, client, router, sequence, cancellationToken) : null;
            return new EndToEndResult(loader.ToString(), policy, sequence.Length, sequence.Length - failed, failed, hits / (double)sequence.Length, loads, evictions,
                Percentile(sorted, 0.50), Percentile(sorted, 0.95), Percentile(sorted, 0.99), sorted.Average(),
                sequence.Length / clock.Elapsed.TotalSeconds, sorted) { Log = log, Promotions = promotions, HitAlone = breakdown };
        }
        finally
        {
            await host.StopAsync(CancellationToken.None);
            await host.DisposeAsync();
        }
    }

    /// <summary>Samples of each path in <see cref="BreakDownHitAsync"/>.</summary>
    private const int BreakdownSamples = 30;

    /// <summary>
    /// Takes a hit apart on the node a policy just ran on: the most requested model, on a runner holding it, one request
    /// at a time, straight to the runner and through the router in turn (<see cref="HitBreakdown"/>).
    /// </summary>
    private static async Task<HitBreakdown?> BreakDownHitAsync(IGrainFactory grains, FalHintsClient client, IRouterGrain router, string[] sequence, CancellationToken cancellationToken)
    {
        var model = sequence.GroupBy(m => m, StringComparer.Ordinal).OrderByDescending(g => g.Count()).First().Key;
        if ((await router.GetSnapshotAsync()).Runners.FirstOrDefault(r => r.Hints.Contains(model, StringComparer.Ordinal)) is not { } holder)
        {
            return null;
        }

        var runner = grains.GetGrain<IRunnerGrain>(holder.RunnerId);
        var direct = new List<double>();
        var routed = new List<double>();
        for (var i = 0; i < BreakdownSamples; i++)
        {
            var input = JsonSerializer.Serialize(new AnyModelInput(model, $"a lighthouse, probe {i}"), FalJson.Options);
            var started = Stopwatch.GetTimestamp();
            var response = await runner.InvokeAsync(new RunnerInvocation($"probe-direct-{i}", AnyModel.AppId, input, HintHit: true));
            if (response.Error is null)
            {
                direct.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            }

            started = Stopwatch.GetTimestamp();
            var result = await client.SubmitAsync(AnyModel.AppId, input, model, cancellationToken);
            if (result.Error is null && result.HintHit)
            {
                routed.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            }
        }

        return direct.Count == 0 || routed.Count == 0 ? null : new HitBreakdown(model, Math.Min(direct.Count, routed.Count), Median(direct), Median(routed));
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    private const string TableHeader =
        "| loader | policy | requests | failed | hit rate | loads | promotions | evictions | p50 (ms) | p95 (ms) | p99 (ms) | mean (ms) | throughput (req/s) |\n" +
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|";

    private static string Row(EndToEndResult r) => string.Create(CultureInfo.InvariantCulture,
        $"| {r.Loader} | {r.Policy} | {r.Requests} | {r.Failed} | {r.HitRate:P1} | {r.Loads} | {r.Promotions} | {r.Evictions} | {r.P50Ms:0.0} | {r.P95Ms:0.0} | {r.P99Ms:0.0} | {r.MeanMs:0.0} | {r.ThroughputRps:0.00} |");

    /// <summary>Each policy against the first one with the same loader, then each loader against the first one per policy.</summary>
    private static void PrintRatios(List<EndToEndResult> results)
    {
        foreach (var byLoader in results.GroupBy(r => r.Loader))
        {
            var first = byLoader.First();
            foreach (var other in byLoader.Skip(1))
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"\n{other.Policy} / {first.Policy}{Suffix(other)}: p50 {other.P50Ms / first.P50Ms:0.0}x, p99 {other.P99Ms / first.P99Ms:0.0}x, loads {other.Loads / (double)Math.Max(1, first.Loads):0.0}x, throughput {other.ThroughputRps / first.ThroughputRps:0.00}x"));
            }
        }

        foreach (var byPolicy in results.GroupBy(r => r.Policy))
        {
            var first = byPolicy.First();
            foreach (var other in byPolicy.Skip(1))
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"\n{first.Loader} / {other.Loader} loader, {first.Policy}: p50 {first.P50Ms / other.P50Ms:0.0}x, p99 {first.P99Ms / other.P99Ms:0.0}x, mean {first.MeanMs / other.MeanMs:0.0}x, throughput {other.ThroughputRps / first.ThroughputRps:0.00}x"));
            }
        }

        foreach (var r in results)
        {
            if (r.HitAlone is not { } hit)
            {
                continue;
            }

            var hitsUnderLoad = r.Log.Where(q => q.HintHit && q.Error is null).Select(q => q.LatencyMs).ToList();
            var underLoad = hitsUnderLoad.Count == 0 ? double.NaN : Median(hitsUnderLoad);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"\nA hit, {r.Policy}{Suffix(r)} ({hit.Model}, {hit.Samples} of each, one at a time after the run): straight to the runner {hit.DirectMs:0.0} ms (render and one grain call), through the router {hit.RoutedMs:0.0} ms (routing {hit.RoutingMs:0.0} ms); hits during the run: median {underLoad:0.0} ms (waiting for a runner and contention {underLoad - hit.RoutedMs:0.0} ms)"));
        }

        string Suffix(EndToEndResult r) => results.Select(x => x.Loader).Distinct().Count() > 1 ? $" ({r.Loader})" : "";
    }

    private static void PrintJson(List<EndToEndResult> results, Settings settings, DemoModelSpec[] specs, long budget) =>
        Console.WriteLine(JsonSerializer.Serialize(new
        {
            device = settings.Device, runners = settings.Runners, models = specs.Length, model_bytes = specs.Select(s => s.Bytes),
            runner_budget_bytes = budget, requests = settings.Requests, concurrency = settings.Concurrency, zipf = settings.Zipf,
            policies = results.Select(r => new
            {
                loader = r.Loader, policy = r.Policy, requests = r.Requests, completed = r.Completed, failed = r.Failed, hit_rate = r.HitRate, loads = r.Loads,
                promotions = r.Promotions, evictions = r.Evictions, p50_ms = r.P50Ms, p95_ms = r.P95Ms, p99_ms = r.P99Ms, mean_ms = r.MeanMs, throughput_rps = r.ThroughputRps,
                hit_alone = r.HitAlone is { } hit ? new { model = hit.Model, samples = hit.Samples, direct_ms = hit.DirectMs, routed_ms = hit.RoutedMs, routing_ms = hit.RoutingMs } : null,
            }),
        }, Indented));

    private static double Percentile(double[] sorted, double p) => sorted[Math.Min(sorted.Length - 1, (int)(sorted.Length * p))];


    /// <summary>Reports on the caller's thread, so nothing is reported after the work ends.</summary>
    private sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
