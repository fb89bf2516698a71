using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using FalHints.Client.Apps;
using FalHints.Client.Requests;
using FalHints.Runner.Models;
using Microsoft.Extensions.Configuration;

namespace FalHints.Host.Commands;

/// <summary>
/// <c>falhints bench</c>: a closed-loop load of any-model requests against a running cluster, models drawn from
/// the local store with Zipf popularity; prints latency percentiles, throughput and the hint hit rate.
/// </summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var requests = new Option<int>("--requests") { Description = "Requests to send.", DefaultValueFactory = _ => 200 };
        var concurrency = new Option<int>("--concurrency") { Description = "Requests in flight at once.", DefaultValueFactory = _ => 4 };
        var zipf = new Option<double>("--zipf") { Description = "Zipf exponent of model popularity (0: uniform).", DefaultValueFactory = _ => 1.0 };
        var noHint = new Option<bool>("--no-hint") { Description = "Send no hints (the app's declared hint field may still apply)." };
        var seed = new Option<int>("--seed") { DefaultValueFactory = _ => 1 };
        var models = CommonOptions.ModelStore();
        var connection = new ClusterConnection.Options();
        var command = new Command("bench", "Drive a running cluster with any-model requests and print latency, throughput and hit rate.")
        {
            requests, concurrency, zipf, noHint, seed, models,
        };
        connection.AddTo(command, http: false);
        command.SetAction(async (parse, cancellationToken) =>
        {
            if (parse.GetValue(requests) < 1 || parse.GetValue(concurrency) < 1 || parse.GetValue(zipf) < 0)
            {
                await Console.Error.WriteLineAsync("error: --requests and --concurrency must be at least 1, --zipf at least 0.");
                return 1;
            }

            var configuration = new ConfigurationBuilder();
            HostConfiguration.Apply(configuration, new Dictionary<string, string?> { ["FalHints:ModelStore:Root"] = parse.GetValue(models) });
            var ids = new ModelStore(HostConfiguration.ModelStoreRoot(configuration.Build())).List().Select(m => m.Id).ToArray();
            if (ids.Length == 0)
            {
                await Console.Error.WriteLineAsync("error: the model store is empty; run 'falhints models init' or 'serve' first.");
                return 1;
            }

            await using var cluster = await ClusterConnection.OpenAsync(parse, connection, cancellationToken);
            return cluster is null
                ? 2
                : await RunAsync(cluster.Client, ids, parse.GetValue(requests), parse.GetValue(concurrency), parse.GetValue(zipf), !parse.GetValue(noHint), parse.GetValue(seed), cancellationToken);
        });
        return command;
    }

    private static async Task<int> RunAsync(FalHintsClient client, string[] models, int count, int concurrency, double exponent, bool hinted, int seed, CancellationToken cancellationToken)
    {
        var random = new Random(seed);
        var zipf = new Zipf(models.Length, exponent, random);
        var picks = Enumerable.Range(0, count).Select(_ => zipf.Next()).ToArray();
        var latencies = new double[count];
        var hits = 0;
        var failures = 0;
        var next = -1;
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < count)
            {
                var model = models[picks[i]];
                var started = clock.Elapsed;
                var result = await client.SubmitAsync(AnyModel.AppId, JsonSerializer.Serialize(new AnyModelInput(model, $"bench {i}"), FalJson.Options), hinted ? model : null, cancellationToken);
                latencies[i] = (clock.Elapsed - started).TotalMilliseconds;
                Interlocked.Add(ref hits, result.HintHit ? 1 : 0);
                Interlocked.Add(ref failures, result.Error is null ? 0 : 1);
                if ((i + 1) % Math.Max(1, count / 10) == 0)
                {
                    Console.Error.WriteLine($"  {i + 1}/{count} requests");
                }
            }
        }));
        clock.Stop();
        Array.Sort(latencies);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"requests {count}, concurrency {concurrency}, models {models.Length} (zipf {exponent}), hints {(hinted ? "on" : "off")}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"p50 {latencies[count / 2]:0.0} ms, p99 {latencies[Math.Min(count - 1, (int)(count * 0.99))]:0.0} ms, throughput {count / clock.Elapsed.TotalSeconds:0.0} req/s, hint hits {hits * 100.0 / count:0.0} %, failures {failures}"));
        return failures == 0 ? 0 : 1;
    }

}
