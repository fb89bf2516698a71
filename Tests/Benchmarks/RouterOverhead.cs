using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using FalHints.Client.Contracts;
using FalHints.Client.Requests;
using FalHints.Host.Hosting;
using FalHints.Runner.Apps;
using FalHints.Runner.Hosting;
using Microsoft.Extensions.DependencyInjection;

namespace FalHints.Benchmarks;

/// <summary>An app that does nothing, so what is measured is the routing around it.</summary>
internal sealed class NoOpApp : FalApp<NoOpInput, NoOpInput>
{
    public const string Id = "bench/no-op";

    public override string AppId => Id;

    public override FalAppSettings Settings { get; } = FalAppSettings.Default with { MaxMultiplexing = 64 };

    protected override Task<NoOpInput> RunAsync(NoOpInput input, CancellationToken cancellationToken) => Task.FromResult(input);
}

internal sealed record NoOpInput(int N);

/// <summary>
/// What the router adds: a no-op app on a whole node in this process, the same number of requests submitted through
/// the router (request grain, queue, dispatch, completion) and sent straight to a runner grain, side by side.
/// </summary>
internal static class RouterOverhead
{
    public static async Task RunAsync(int count, int concurrency, string storage, int rounds, string? redis)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(rounds, 1);
        var store = Directory.CreateTempSubdirectory("falhints-bench-store-");
        var settings = BenchNode.Settings("bench", store.FullName);
        settings["FalHints:Runners:CpuRunners"] = "2";
        settings["FalHints:Storage:Mode"] = storage;
        settings["FalHints:Storage:Path"] = Path.Combine(store.FullName, "requests.db");
        if (redis is not null)
        {
            // A one-node cluster on Redis (membership and, with --storage redis, request state), under a service id of its own.
            settings["FalHints:Cluster:Mode"] = "redis";
            settings["FalHints:Cluster:RedisConnection"] = redis;
            settings["FalHints:Cluster:ServiceId"] = $"bench-{Guid.NewGuid():N}";
            settings["FalHints:Silo:AdvertisedAddress"] = "127.0.0.1";
        }

        var host = FalHintsWebHost.Build(settings, CancellationToken.None, silo => silo.AddFalApp<NoOpApp>());
        await host.StartAsync();
        try
        {
            var grains = host.Services.GetRequiredService<IGrainFactory>();
            var client = new FalHintsClient(grains);
            var runners = new[] { grains.GetGrain<IRunnerGrain>("bench/cpu:0"), grains.GetGrain<IRunnerGrain>("bench/cpu:1") };
            Task Routed(int i) => client.SubmitAsync(NoOpApp.Id, $$"""{"n":{{i}}}""", null);
            Task Direct(int i) => runners[i % 2].InvokeAsync(new RunnerInvocation($"direct-{i}", NoOpApp.Id, $$"""{"n":{{i}}}"""));

            // Warm up both paths (grain activations, JIT), then measure them alternately, round after round, so that
            // load from elsewhere on a shared machine falls on both; the figures are the medians of the rounds.
            await MeasureAsync(Routed, 500, concurrency);
            await MeasureAsync(Direct, 500, concurrency);
            var directRounds = new List<Measure>();
            var routedRounds = new List<Measure>();
            using var counters = new OrleansCounters();
            var (directCost, routedCost) = (new PathCost(), new PathCost());
            for (var round = 0; round < rounds; round++)
            {
                directRounds.Add(await directCost.MeasureAsync(counters, () => MeasureAsync(Direct, count, concurrency)));
                routedRounds.Add(await routedCost.MeasureAsync(counters, () => MeasureAsync(Routed, count, concurrency)));
            }

            var (direct, routed) = (Median(directRounds), Median(routedRounds));
            Console.WriteLine($"storage {storage}, concurrency {concurrency}, {rounds} rounds of {count} requests per path (medians)");
            Console.WriteLine("| path | requests | concurrency | req/s | p50 (ms) | p99 (ms) |");
            Console.WriteLine("|---|---:|---:|---:|---:|---:|");
            foreach (var (name, m) in new[] { ("direct runner call", direct), ("through the router", routed) })
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {name} | {count} | {concurrency} | {m.PerSecond:0} | {m.P50:0.00} | {m.P99:0.00} |"));
            }

            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"\nrouted / direct: p50 +{routed.P50 - direct.P50:0.00} ms ({routed.P50 / direct.P50:0.0}x), p99 {routed.P99 / direct.P99:0.0}x, throughput {routed.PerSecond / direct.PerSecond:0.00}x"));

            // What each request costs, whatever else the machine runs: CPU time of this process, and Orleans' own counts
            // (messages sent, storage operations), per request, over all rounds.
            var requests = (double)count * rounds;
            Console.WriteLine("\n| per request | direct | routed |");
            Console.WriteLine("|---|---:|---:|");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| CPU time of the process (ms) | {directCost.Cpu.TotalMilliseconds / requests:0.000} | {routedCost.Cpu.TotalMilliseconds / requests:0.000} |"));
            foreach (var name in directCost.Counts.Keys.Union(routedCost.Counts.Keys).Order(StringComparer.Ordinal))
            {
                var (d, r) = (directCost.Counts.GetValueOrDefault(name) / requests, routedCost.Counts.GetValueOrDefault(name) / requests);
                if (d >= 0.01 || r >= 0.01)
                {
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {name} | {d:0.00} | {r:0.00} |"));
                }
            }
        }
        finally
        {
            await host.StopAsync();
            await host.DisposeAsync();
            store.Delete(recursive: true);
        }
    }

    private static Measure Median(List<Measure> rounds)
    {
        static double Mid(IEnumerable<double> values) => values.Order().ElementAt(values.Count() / 2);
        return new Measure(Mid(rounds.Select(r => r.PerSecond)), Mid(rounds.Select(r => r.P50)), Mid(rounds.Select(r => r.P99)));
    }

    private static async Task<Measure> MeasureAsync(Func<int, Task> call, int count, int concurrency)
    {
        var latencies = new double[count];
        var next = -1;
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < count)
            {
                var started = Stopwatch.GetTimestamp();
                await call(i);
                latencies[i] = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            }
        }));
        clock.Stop();
        Array.Sort(latencies);
        return new Measure(count / clock.Elapsed.TotalSeconds, latencies[count / 2], latencies[(int)(count * 0.99)]);
    }

    private readonly record struct Measure(double PerSecond, double P50, double P99);

    /// <summary>The CPU time and the Orleans counts that one path's rounds added up to.</summary>
    private sealed class PathCost
    {
        public TimeSpan Cpu { get; private set; }

        public Dictionary<string, long> Counts { get; } = new(StringComparer.Ordinal);

        public async Task<Measure> MeasureAsync(OrleansCounters counters, Func<Task<Measure>> measure)
        {
            var (cpu, before) = (Process.GetCurrentProcess().TotalProcessorTime, counters.Snapshot());
            var result = await measure();
            Cpu += Process.GetCurrentProcess().TotalProcessorTime - cpu;
            foreach (var (name, value) in counters.Snapshot())
            {
                Counts[name] = Counts.GetValueOrDefault(name) + value - before.GetValueOrDefault(name);
            }

            return result;
        }
    }

    /// <summary>Totals of the integer counters of Orleans' meters (messages, storage operations, ...), by instrument and tags.</summary>
    private sealed class OrleansCounters : IDisposable
    {
        private readonly MeterListener _listener = new();
        private readonly ConcurrentDictionary<string, long> _totals = new(StringComparer.Ordinal);

        public OrleansCounters()
        {
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name.StartsWith("Microsoft.Orleans", StringComparison.Ordinal) && !instrument.Name.Contains("duration", StringComparison.Ordinal)
                    && instrument is Counter<long> or Counter<int> or ObservableCounter<long> or ObservableCounter<int>)
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => Add(instrument, value, tags));
            _listener.SetMeasurementEventCallback<int>((instrument, value, tags, _) => Add(instrument, value, tags));
            _listener.Start();
        }

        public Dictionary<string, long> Snapshot()
        {
            _listener.RecordObservableInstruments();
            return new(_totals, StringComparer.Ordinal);
        }

        public void Dispose() => _listener.Dispose();

        private void Add(Instrument instrument, long value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var name = instrument.Name;
            foreach (var tag in tags)
            {
                name += $" {tag.Key}={tag.Value}";
            }

            // An observable counter reports its running total; a counter, each increment.
            _totals.AddOrUpdate(name, value, (_, total) => instrument.IsObservable ? value : total + value);
        }
    }

}
