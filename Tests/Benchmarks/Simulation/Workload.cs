using System.Globalization;
using FalHints.Host.Commands;

namespace FalHints.Benchmarks.Simulation;

/// <summary>A request of a simulated workload: when it arrives (ms), which model it needs, whether the caller sends that as its hint, and how long inference takes.</summary>
public sealed record SimRequest(double ArrivalMs, string Model, bool Hinted, double ServiceMs);

/// <summary>Everything a simulation needs: the runners, their memory, the models and their sizes, the load cost, the requests.</summary>
public sealed record Workload(
    string Name,
    int Runners,
    long RunnerMemoryBytes,
    IReadOnlyDictionary<string, long> ModelBytes,
    double LoadFixedMs,
    double LoadGbps,
    IReadOnlyList<SimRequest> Requests)
{
    /// <summary>Time to load a model: a fixed cost plus its size over the bandwidth.</summary>
    public double LoadMs(string model) => LoadFixedMs + ModelBytes[model] / (LoadGbps * 1e9) * 1000;
}

/// <summary>The built-in workloads and the trace reader.</summary>
public static class Workloads
{
    /// <summary>The built-in workloads' names.</summary>
    public static IReadOnlyList<string> Names { get; } = ["zipf", "zipf-drift", "bursty", "uniform", "partial-hints"];

    /// <summary>
    /// 8 runners with 8 GiB each; 40 models of 0.5 to 2 GiB; loads cost 200 ms plus 2 GB/s; inference 50 to 150 ms;
    /// Poisson arrivals at <paramref name="utilisation"/> (default 60%) of the runners' capacity for inference alone
    /// (loads come on top); 20,000 requests. The named variants change popularity (Zipf 1.0, drifting, uniform),
    /// arrivals (bursts) or the share of hinted requests.
    /// </summary>
    public static Workload BuiltIn(string name, int seed, int requests = 20_000, int runners = 8, int models = 40, long runnerMemory = 8L << 30, double utilisation = 0.6)
    {
        var random = new Random(seed);
        var sizes = Enumerable.Range(0, models).ToDictionary(i => $"org/model-{i:D3}", _ => (long)((0.5 + random.NextDouble() * 1.5) * (1L << 30)));
        var ids = sizes.Keys.ToArray();
        var exponent = name == "uniform" ? 0.0 : 1.0;
        var zipf = new Zipf(ids.Length, exponent, random);
        var meanServiceMs = 100.0;
        var rate = utilisation * runners / meanServiceMs;
        var list = new List<SimRequest>(requests);
        var time = 0.0;
        for (var i = 0; i < requests; i++)
        {
            var currentRate = name == "bursty" ? (time % 6000 < 2000 ? rate * 2.5 : rate * 0.25) : rate;
            time += -Math.Log(1 - random.NextDouble()) / currentRate;
            var rank = zipf.Next();
            if (name == "zipf-drift")
            {
                // Popularity drifts: every 2,000 requests the ranking shifts by five models.
                rank = (rank + i / 2000 * 5) % models;
            }

            var hinted = name != "partial-hints" || random.NextDouble() < 0.5;
            list.Add(new SimRequest(time, ids[rank], hinted, 50 + random.NextDouble() * 100));
        }

        return new Workload(name, runners, runnerMemory, sizes, 200, 2, list);
    }

    /// <summary>Reads a trace (<c>arrival_ms,hint,service_ms</c>) and its models (<c>hint,bytes</c>); every request of a trace is hinted.</summary>
    public static Workload FromTrace(string tracePath, string modelsPath, int runners, long runnerMemory, double loadFixedMs, double loadGbps)
    {
        var sizes = ReadCsv(modelsPath, "hint,bytes").ToDictionary(row => row[0], row => long.Parse(row[1], CultureInfo.InvariantCulture), StringComparer.Ordinal);
        var requests = ReadCsv(tracePath, "arrival_ms,hint,service_ms").Select((row, line) =>
        {
            if (!sizes.ContainsKey(row[1]))
            {
                throw new FormatException($"{tracePath}: request {line + 1} needs model '{row[1]}', which {modelsPath} does not list.");
            }

            return new SimRequest(double.Parse(row[0], CultureInfo.InvariantCulture), row[1], true, double.Parse(row[2], CultureInfo.InvariantCulture));
        }).OrderBy(r => r.ArrivalMs).ToList();
        return new Workload(Path.GetFileNameWithoutExtension(tracePath), runners, runnerMemory, sizes, loadFixedMs, loadGbps, requests);
    }

    private static IEnumerable<string[]> ReadCsv(string path, string header)
    {
        using var reader = new StreamReader(path);
        var first = reader.ReadLine()?.Trim();
        if (!string.Equals(first, header, StringComparison.Ordinal))
        {
            throw new FormatException($"{path}: the header must be '{header}', not '{first}'.");
        }

        var number = 1;
        while (reader.ReadLine() is { } line)
        {
            number++;
            if (line.Trim().Length == 0)
            {
                continue;
            }

            var cells = line.Split(',');
            if (cells.Length != header.Split(',').Length)
            {
                throw new FormatException($"{path}:{number}: expected {header.Split(',').Length} columns ({header}).");
            }

            yield return cells;
        }
    }
}
