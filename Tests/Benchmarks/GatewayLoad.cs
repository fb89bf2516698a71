using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using FalHints.Benchmarks.Reporting;
using FalHints.Client.Apps;
using FalHints.Host.Hosting;
using FalHints.Runner.Apps;
using FalHints.Runner.Hosting;
using FalHints.Runner.Models;

namespace FalHints.Benchmarks;

/// <summary>An app with a cache of keyed entries: a miss costs a short load, and its hints are the keys it holds.</summary>
public sealed class KeyedCacheApp : FalApp<KeyedInput, KeyedOutput>
{
    /// <summary>The app's id.</summary>
    public const string Id = "bench/keyed";

    private RunnerContext _runner = null!;

    /// <inheritdoc />
    public override string AppId => Id;

    /// <summary>Four requests at a time per runner; the input's key is the hint when the caller sends none.</summary>
    public override FalAppSettings Settings { get; } = FalAppSettings.Default with { MaxMultiplexing = 4, HintField = "key" };

    /// <inheritdoc />
    public override Task SetupAsync(RunnerContext runner, CancellationToken cancellationToken)
    {
        _runner = runner;
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public override IReadOnlyList<string> ProvideHints() => _runner.Pipelines.Keys;

    /// <inheritdoc />
    protected override async Task<KeyedOutput> RunAsync(KeyedInput input, CancellationToken cancellationToken)
    {
        var loaded = false;
        using var entry = await _runner.Pipelines.AcquireAsync(input.Key, 1 << 20, async () =>
        {
            loaded = true;
            await Task.Delay(20, cancellationToken);
            return new KeyedEntry(input.Key.ToUpperInvariant());
        }, cancellationToken);
        return new KeyedOutput(entry.Value.Value, input.Text.Length, !loaded);
    }
}

/// <summary>A cached entry of <see cref="KeyedCacheApp"/> (a pipeline cache holds disposable values).</summary>
public sealed record KeyedEntry(string Value) : IDisposable
{
    /// <inheritdoc />
    public void Dispose()
    {
    }
}

/// <summary>Input of <see cref="KeyedCacheApp"/>.</summary>
public sealed record KeyedInput(string Key, string Text);

/// <summary>Output of <see cref="KeyedCacheApp"/>: the entry's value, the text's length, and whether the entry was cached.</summary>
public sealed record KeyedOutput(string Value, int Length, bool Cached);

/// <summary>What a gateway load run saw.</summary>
public sealed record GatewayLoadResult(
    int Requests, int Accepted, int Completed, int Failed, int Lost, int ServerErrors, int ClientErrors,
    double Seconds, double P50Ms, double P99Ms, IReadOnlyDictionary<string, int> CompletedPerApp, IReadOnlyList<string> Problems)
{
    /// <summary>Requests answered per second.</summary>
    public double PerSecond => Requests / Seconds;
}

/// <summary>
/// <c>falhints-bench gateway-load</c>: a whole node in this process (gateway on loopback, silo, two CPU runners) with
/// three apps (any-model with real TorchSharp renders, a keyed cache app, a no-op app); HTTP clients submit a mix of
/// requests with and without hints through fal's queue API, follow each one's status stream and fetch its result.
/// Every accepted request must end in a result or an explicit error; none may be lost, and no answer may be a 5xx.
/// </summary>
public static class GatewayLoad
{
    private static readonly string[] Apps = [AnyModel.AppId, KeyedCacheApp.Id, NoOpApp.Id];
    private static readonly string[] Models = ["load/ember", "load/tide", "load/moss"];

    public static Command Create()
    {
        var requests = new Option<int>("--requests") { DefaultValueFactory = _ => 10_000 };
        var concurrency = new Option<int>("--concurrency") { Description = "HTTP clients at once.", DefaultValueFactory = _ => 32 };
        var bound = new Option<int>("--bound-seconds") { Description = "Longest the whole run may take.", DefaultValueFactory = _ => 900 };
        var seed = new Option<int>("--seed") { DefaultValueFactory = _ => 1 };
        var command = new Command("gateway-load", "Mixed requests to three apps through the HTTP gateway on loopback: none lost, no 5xx.")
        {
            requests, concurrency, bound, seed,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            if (parse.GetValue(requests) < 1 || parse.GetValue(concurrency) < 1 || parse.GetValue(bound) < 1)
            {
                await Console.Error.WriteLineAsync("error: --requests, --concurrency and --bound-seconds must be at least 1.");
                return 1;
            }

            using var line = new ProgressLine("gateway load", parse.GetValue(requests));
            var result = await RunAsync(parse.GetValue(requests), parse.GetValue(concurrency), TimeSpan.FromSeconds(parse.GetValue(bound)),
                parse.GetValue(seed), line, cancellationToken);
            line.Dispose();
            Console.WriteLine("| requests | accepted | completed | failed (explicit) | lost | 5xx | 4xx | seconds | req/s | p50 (ms) | p99 (ms) |");
            Console.WriteLine("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {result.Requests} | {result.Accepted} | {result.Completed} | {result.Failed} | {result.Lost} | {result.ServerErrors} | {result.ClientErrors} | {result.Seconds:0.0} | {result.PerSecond:0} | {result.P50Ms:0.0} | {result.P99Ms:0.0} |"));
            Console.WriteLine($"\ncompleted per app: {string.Join(", ", result.CompletedPerApp.Select(p => $"{p.Key} {p.Value}"))}");
            foreach (var problem in result.Problems.Take(20))
            {
                Console.WriteLine($"problem: {problem}");
            }

            return result.Lost == 0 && result.ServerErrors == 0 && result.ClientErrors == 0 ? 0 : 2;
        });
        return command;
    }

    /// <summary>Starts the node, sends <paramref name="count"/> requests with <paramref name="concurrency"/> clients, stops the node.</summary>
    public static async Task<GatewayLoadResult> RunAsync(int count, int concurrency, TimeSpan bound, int seed, IProgress<long>? progress, CancellationToken cancellationToken)
    {
        var store = Directory.CreateTempSubdirectory("falhints-load-store-");
        DemoModels.Fill(new ModelStore(store.FullName), [.. Models.Select(m => new DemoModelSpec(m, 1L << 20))], cancellationToken: cancellationToken);
        var url = $"http://127.0.0.1:{BenchNode.FreePort()}";
        var settings = BenchNode.Settings("load", store.FullName, url);
        settings["FalHints:Runners:CpuRunners"] = "2";
        var host = FalHintsWebHost.Build(settings, cancellationToken, silo => silo.AddFalApp<KeyedCacheApp>().AddFalApp<NoOpApp>());
        await host.StartAsync(cancellationToken);
        try
        {
            using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = concurrency * 2, PooledConnectionLifetime = TimeSpan.FromMinutes(10) })
            {
                BaseAddress = new Uri(url),
                Timeout = TimeSpan.FromMinutes(2),
            };
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            deadline.CancelAfter(bound);
            return await DriveAsync(http, count, concurrency, seed, progress, deadline.Token);
        }
        finally
        {
            await host.StopAsync(CancellationToken.None);
            await host.DisposeAsync();
            store.Delete(recursive: true);
        }
    }

    private static async Task<GatewayLoadResult> DriveAsync(HttpClient http, int count, int concurrency, int seed, IProgress<long>? progress, CancellationToken cancellationToken)
    {
        var latencies = new double[count];
        var outcomes = new Outcome[count];
        var problems = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var next = -1;
        var done = 0L;
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < count)
            {
                var started = Stopwatch.GetTimestamp();
                var planned = Describe(i, seed);
                outcomes[i] = new Outcome(planned.App);
                try
                {
                    await SendAsync(http, planned, outcomes[i], problems, cancellationToken);
                }
                catch (Exception ex) when (ex is OperationCanceledException or HttpRequestException or JsonException)
                {
                    // The run's time bound passed, the connection broke, or an answer was not JSON: counted, never hidden.
                    outcomes[i].Lost = outcomes[i].Accepted;
                    problems.Enqueue($"request {i} ({planned.App}): {ex.GetType().Name}: {ex.Message}");
                }

                latencies[i] = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                progress?.Report(Interlocked.Increment(ref done));
            }
        }));
        clock.Stop();

        var answered = latencies.Where((_, i) => outcomes[i].Completed || outcomes[i].Failed).Order().ToArray();
        return new GatewayLoadResult(
            count,
            outcomes.Count(o => o.Accepted),
            outcomes.Count(o => o.Completed),
            outcomes.Count(o => o.Failed),
            outcomes.Count(o => o.Lost || (o.Accepted && !o.Completed && !o.Failed)),
            outcomes.Sum(o => o.ServerErrors),
            outcomes.Sum(o => o.ClientErrors),
            clock.Elapsed.TotalSeconds,
            answered.Length == 0 ? 0 : answered[answered.Length / 2],
            answered.Length == 0 ? 0 : answered[Math.Min(answered.Length - 1, (int)(answered.Length * 0.99))],
            outcomes.Where(o => o.Completed).GroupBy(o => o.App).ToDictionary(g => g.Key, g => g.Count()),
            [.. problems]);
    }

    private sealed record Planned(string App, string Body, string? Hint);

    /// <summary>What became of one request; filled in as it goes, so a request cut off still shows whether it was accepted.</summary>
    private sealed class Outcome(string app)
    {
        public string App { get; } = app;

        public bool Accepted { get; set; }

        public bool Completed { get; set; }

        public bool Failed { get; set; }

        public bool Lost { get; set; }

        public int ServerErrors { get; set; }

        public int ClientErrors { get; set; }

        /// <summary>Counts a 4xx or 5xx; true for a success.</summary>
        public bool Classify(HttpStatusCode status)
        {
            var code = (int)status;
            if (code >= 500)
            {
                ServerErrors++;
                return false;
            }

            if (code >= 400)
            {
                ClientErrors++;
                return false;
            }

            return true;
        }
    }

    /// <summary>Request <paramref name="i"/> of the mix: an app, a valid input, and a hint (or none) drawn with the seed.</summary>
    private static Planned Describe(int i, int seed)
    {
        var random = new Random(HashCode.Combine(seed, i));
        var app = Apps[random.Next(Apps.Length)];
        var hintChoice = random.Next(4);
        switch (app)
        {
            case AnyModel.AppId:
                var model = Models[random.Next(Models.Length)];
                var body = JsonSerializer.Serialize(new { model, prompt = $"a lighthouse at dusk, number {i}" });
                return new Planned(app, body, hintChoice == 0 ? null : hintChoice == 1 ? $"stale/{model}" : model);
            case KeyedCacheApp.Id:
                var key = $"key-{random.Next(40):D2}";
                return new Planned(app, JsonSerializer.Serialize(new { key, text = $"text, émoji 🚀, comma, {i}" }), hintChoice == 0 ? null : key);
            default:
                return new Planned(app, JsonSerializer.Serialize(new { n = i }), hintChoice == 0 ? null : $"no-op-{random.Next(8)}");
        }
    }

    private static async Task SendAsync(HttpClient http, Planned planned, Outcome outcome, System.Collections.Concurrent.ConcurrentQueue<string> problems, CancellationToken cancellationToken)
    {
        using var submit = new HttpRequestMessage(HttpMethod.Post, "/" + planned.App) { Content = new StringContent(planned.Body, Encoding.UTF8, "application/json") };
        if (planned.Hint is not null)
        {
            submit.Headers.Add("X-Fal-Runner-Hint", planned.Hint);
        }

        using var submitted = await http.SendAsync(submit, cancellationToken);
        if (!outcome.Classify(submitted.StatusCode))
        {
            problems.Enqueue($"submit to {planned.App} answered {(int)submitted.StatusCode}: {await submitted.Content.ReadAsStringAsync(cancellationToken)}");
            return;
        }

        using var ticket = JsonDocument.Parse(await submitted.Content.ReadAsStringAsync(cancellationToken));
        var requestId = ticket.RootElement.GetProperty("request_id").GetString()!;
        outcome.Accepted = true;

        // Follow the status stream until it says COMPLETED, as fal's clients do.
        var completed = false;
        using (var stream = await http.GetAsync($"/{planned.App}/requests/{requestId}/status/stream", HttpCompletionOption.ResponseHeadersRead, cancellationToken))
        {
            if (!outcome.Classify(stream.StatusCode))
            {
                problems.Enqueue($"status stream of {requestId} answered {(int)stream.StatusCode}");
                return;
            }

            using var reader = new StreamReader(await stream.Content.ReadAsStreamAsync(cancellationToken));
            while (await reader.ReadLineAsync(cancellationToken) is { } text)
            {
                completed |= text.StartsWith("data: ", StringComparison.Ordinal) && text.Contains("\"status\":\"COMPLETED\"", StringComparison.Ordinal);
            }
        }

        if (!completed)
        {
            problems.Enqueue($"status stream of {requestId} ended before COMPLETED");
            return;
        }

        using var result = await http.GetAsync($"/{planned.App}/requests/{requestId}", cancellationToken);
        var answer = await result.Content.ReadAsStringAsync(cancellationToken);
        if (outcome.Classify(result.StatusCode))
        {
            using var output = JsonDocument.Parse(answer);
            outcome.Completed = output.RootElement.ValueKind == JsonValueKind.Object;
            return;
        }

        // An explicit error for this request is an answer, not a loss (a 5xx is also counted as a server error).
        outcome.Failed = true;
        problems.Enqueue($"result of {requestId} ({planned.App}) answered {(int)result.StatusCode}: {answer}");
    }
}
