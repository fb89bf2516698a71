using System.Diagnostics;
using System.Globalization;
using FalHints.Client.Contracts;
using FalHints.Host.Commands;
using FalHints.Router.Placement;
using FalHints.Router.Queue;

namespace FalHints.Benchmarks;

/// <summary>
/// What one placement decision costs the router: a dispatcher with <c>runners</c> runners holding <c>hints</c>
/// distinct hints between them, kept about half busy, places a stream of hinted requests (Zipf 1.0 popularity); each
/// decision is one enqueue-and-pump, timed on its own.
/// </summary>
internal static class PlacementCost
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    public sealed record Result(int Runners, int Hints, int Decisions, double DecisionsPerSecond, double P50Us, double P99Us, double MeanUs, long IndexBytes);

    public static Result Run(int runnerCount, int hintCount, int decisions, int seed)
    {
        var random = new Random(seed);
        var hints = Enumerable.Range(0, hintCount).Select(i => $"owner/model-{i:D6}").ToArray();
        var zipf = new Zipf(hintCount, 1.0, random);
        var before = GC.GetTotalMemory(forceFullCollection: true);
        var dispatcher = new Dispatcher(new HintAffinityPolicy(), DispatcherOptions.Default);
        const int Capacity = 2;
        var perRunner = Math.Max(1, hintCount / runnerCount);
        long sequence = 0;
        for (var r = 0; r < runnerCount; r++)
        {
            var held = Enumerable.Range(0, perRunner).Select(k => hints[(r * perRunner + k) % hintCount]).ToArray();
            dispatcher.Index.Apply(new HintsEvent($"silo-{r / 8}/cpu:{r % 8}", $"silo-{r / 8}", $"cpu:{r % 8}", "o/app", [.. held], 0, Capacity,
                ++sequence, T0, HintsEventKind.Heartbeat, [], CacheUsage.None), T0);
        }

        var indexBytes = GC.GetTotalMemory(forceFullCollection: true) - before;
        var running = new Queue<Dispatch>();
        var samples = new double[decisions];
        var ticksToUs = 1_000_000.0 / Stopwatch.Frequency;
        var total = Stopwatch.StartNew();
        for (var i = 0; i < decisions; i++)
        {
            var ticket = new RequestTicket(new InferenceRequest($"r{i}", "o/app", "{}", hints[zipf.Next()]), T0.AddTicks(i));
            var started = Stopwatch.GetTimestamp();
            dispatcher.Enqueue(ticket);
            foreach (var dispatch in dispatcher.Pump(T0.AddTicks(i)))
            {
                running.Enqueue(dispatch);
            }

            samples[i] = (Stopwatch.GetTimestamp() - started) * ticksToUs;

            // Keep about half the slots busy: finish the oldest requests beyond that.
            while (running.Count > runnerCount * Capacity / 2)
            {
                var done = running.Dequeue();
                dispatcher.Complete(done.Ticket.RequestId, done.RunnerId);
            }
        }

        total.Stop();
        Array.Sort(samples);
        return new Result(runnerCount, hintCount, decisions, decisions / total.Elapsed.TotalSeconds,
            samples[decisions / 2], samples[(int)(decisions * 0.99)], samples.Average(), indexBytes);
    }

    public static string Format(Result r) => string.Create(CultureInfo.InvariantCulture,
        $"| {r.Runners,7:N0} | {r.Hints,9:N0} | {r.Decisions,9:N0} | {r.DecisionsPerSecond,12:N0} | {r.P50Us,8:0.0} | {r.P99Us,8:0.0} | {r.MeanUs,8:0.0} | {r.IndexBytes / 1048576.0,9:0.0} |");

    public const string Header = "| runners |     hints | decisions | decisions/s  | p50 (µs) | p99 (µs) | mean (µs)| index (MB)|\n|--------:|----------:|----------:|-------------:|---------:|---------:|---------:|----------:|";
}

