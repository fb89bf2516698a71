using System.Globalization;
using FalHints.Host.Commands;

namespace FalHints.Benchmarks.Simulation;

/// <summary>A request of a simulated workload: when it arrives (ms), which model it needs, whether the caller sends that as its hint, and how long inference takes.</summary>
public sealed record SimRequest(double ArrivalMs, string Model, bool Hinted, double ServiceMs);

/// <summary>Everything a simulation needs: the runners, their memory, the models and their sizes, the load cost, the requests.</summary>
/// <param name="Name">What the workload is called in reports.</param>
/// <param name="Runners">How many runners serve it.</param>
/// <param name="RunnerMemoryBytes">Bytes of models one runner holds.</param>
/// <param name="ModelBytes">Each model's size.</param>
/// <param name="LoadFixedMs">What every load costs on top of its transfer.</param>
/// <param name="LoadGbps">How fast a model is read from storage.</param>
/// <param name="Requests">The requests, in arrival order.</param>
/// <param name="Phases">Indices of the requests where the workload's popularity changes (the first is 0); the never-wait ceiling lays models out afresh for each phase.</param>
/// <param name="MaxMultiplexing">Requests a runner runs at once; more that it accepted wait in its own queue.</param>
/// <param name="HostMemoryBytes">Bytes of host memory per runner for models evicted from its device (0: no host tier).</param>
/// <param name="HostGbps">How fast a model is copied from host memory to the device (a promotion).</param>
public sealed record Workload(
    string Name,
    int Runners,
    long RunnerMemoryBytes,
    IReadOnlyDictionary<string, long> ModelBytes,
    double LoadFixedMs,
    double LoadGbps,
    IReadOnlyList<SimRequest> Requests,
    IReadOnlyList<int>? Phases = null,
    int MaxMultiplexing = 1,
    long HostMemoryBytes = 0,
    double HostGbps = Workload.DefaultHostGbps)
{
    /// <summary>
    /// The host-to-device bandwidth assumed for promotions unless one is given: the host tier's target in the model
    /// loader's issue (a pinned copy on an H100-class card measures about 55 GB/s).
    /// </summary>
    public const double DefaultHostGbps = 20;

    /// <summary>True when runners keep evicted models in host memory.</summary>
    public bool HasHostTier => HostMemoryBytes > 0;

    /// <summary>Time to load a model from storage: a fixed cost plus its size over the bandwidth.</summary>
    public double LoadMs(string model) => LoadFixedMs + ModelBytes[model] / (LoadGbps * 1e9) * 1000;

    /// <summary>Time to bring a model back from host memory to the device: its size over the host-to-device bandwidth.</summary>
    public double PromotionMs(string model) => ModelBytes[model] / (HostGbps * 1e9) * 1000;

    /// <summary>Where popularity changes; one phase when the workload does not say.</summary>
    public IReadOnlyList<int> PhaseStarts => Phases is { Count: > 0 } phases ? phases : [0];
}

/// <summary>The sizes of a built-in workload's models and the memory of its runners.</summary>
public enum ModelSizes
{
    /// <summary>0.5 to 2 GiB models, 8 GiB per runner; loads cost 0.45 to 1.3 s.</summary>
    Standard = 0,

    /// <summary>4 to 12 GiB models, 48 GiB per runner; loads cost 2.3 to 6.6 s.</summary>
    Large = 1,
}

/// <summary>The built-in workloads and the trace reader.</summary>
public static class Workloads
{
    /// <summary>The model a flash crowd asks for.</summary>
    public const string FlashModel = "org/flash-crowd";

    /// <summary>The built-in workloads' names.</summary>
    public static IReadOnlyList<string> Names { get; } = ["zipf", "zipf-drift", "bursty", "uniform", "partial-hints", "flash-crowd"];

    /// <summary>Runner memory of a size class.</summary>
    public static long DefaultRunnerMemory(ModelSizes sizes) => sizes == ModelSizes.Large ? 48L << 30 : 8L << 30;

    /// <summary>
    /// 8 runners; 40 models (0.5 to 2 GiB with 8 GiB per runner, or with <see cref="ModelSizes.Large"/> 4 to 12 GiB with
    /// 48 GiB per runner); loads cost 200 ms plus 2 GB/s; inference 50 to 150 ms; Poisson arrivals at
    /// <paramref name="utilisation"/> (default 60%) of the runners' capacity for inference alone (loads come on top);
    /// 20,000 requests. The named variants change popularity (Zipf 1.0, drifting, uniform, a flash crowd), arrivals
    /// (bursts) or the share of hinted requests. <c>flash-crowd</c> always uses large models: for the middle third of
    /// the run half the requests ask for a model nobody asked for before.
    /// </summary>
    public static Workload BuiltIn(string name, int seed, int requests = 20_000, int runners = 8, int models = 40, long? runnerMemory = null,
        double utilisation = 0.6, ModelSizes sizes = ModelSizes.Standard)
    {
        if (name == "flash-crowd")
        {
            sizes = ModelSizes.Large;
        }

        var random = new Random(seed);
        var (minGiB, spanGiB) = sizes == ModelSizes.Large ? (4.0, 8.0) : (0.5, 1.5);
        var bytes = Enumerable.Range(0, models).ToDictionary(i => $"org/model-{i:D3}", _ => (long)((minGiB + random.NextDouble() * spanGiB) * (1L << 30)));
        var ids = bytes.Keys.ToArray();
        if (name == "flash-crowd")
        {
            bytes[FlashModel] = (long)((minGiB + spanGiB / 2) * (1L << 30));
        }

        var zipf = new Zipf(ids.Length, name == "uniform" ? 0.0 : 1.0, random);
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

            var model = ids[rank];
            if (name == "flash-crowd" && i >= requests / 3 && i < 2 * requests / 3 && random.NextDouble() < 0.5)
            {
                model = FlashModel;
            }

            var hinted = name != "partial-hints" || random.NextDouble() < 0.5;
            list.Add(new SimRequest(time, model, hinted, 50 + random.NextDouble() * 100));
        }

        IReadOnlyList<int> phases = name switch
        {
            "zipf-drift" => [.. Enumerable.Range(0, (requests + 1999) / 2000).Select(p => p * 2000)],
            "flash-crowd" => [0, requests / 3, 2 * requests / 3],
            _ => [0],
        };
        return new Workload(name, runners, runnerMemory ?? DefaultRunnerMemory(sizes), bytes, 200, 2, list, phases);
    }

    /// <summary>
    /// Reads a trace (<c>arrival_ms,hint,service_ms</c>, or <c>arrival_ms,hint,service_ms,model</c>) and its models
    /// (<c>hint,bytes</c>). Without the model column every request is hinted with the model it needs; with it, an empty
    /// hint is an unhinted request for that model, and a hint must name the request's model.
    /// </summary>
    public static Workload FromTrace(string tracePath, string modelsPath, int runners, long runnerMemory, double loadFixedMs, double loadGbps)
    {
        var sizes = ReadCsv(modelsPath, ["hint,bytes"]).ToDictionary(row => row.Cells[0], row => ParseBytes(row.Cells[1], modelsPath, row.Line), StringComparer.Ordinal);
        var requests = ReadCsv(tracePath, ["arrival_ms,hint,service_ms", "arrival_ms,hint,service_ms,model"]).Select(row =>
        {
            var cells = row.Cells;
            var model = cells.Length > 3 ? cells[3] : cells[1];
            if (cells.Length > 3 && cells[1].Length > 0 && !string.Equals(cells[1], model, StringComparison.Ordinal))
            {
                throw new FormatException($"{tracePath}:{row.Line}: the hint '{cells[1]}' does not name the request's model '{model}' (leave the hint empty for an unhinted request).");
            }

            if (!sizes.ContainsKey(model))
            {
                throw new FormatException($"{tracePath}:{row.Line}: the request needs model '{model}', which {modelsPath} does not list.");
            }

            return new SimRequest(ParseNumber(cells[0], tracePath, row.Line, "arrival_ms"), model, cells[1].Length > 0, ParseNumber(cells[2], tracePath, row.Line, "service_ms"));
        }).OrderBy(r => r.ArrivalMs).ToList();
        if (requests.Count == 0)
        {
            throw new FormatException($"{tracePath}: the trace has no requests.");
        }

        return new Workload(Path.GetFileNameWithoutExtension(tracePath), runners, runnerMemory, sizes, loadFixedMs, loadGbps, requests);
    }

    /// <summary>Writes a workload as a trace with a model column and its models file, so it can be read back with <see cref="FromTrace"/>.</summary>
    public static void WriteTrace(Workload workload, string tracePath, string modelsPath)
    {
        using (var trace = new StreamWriter(tracePath))
        {
            trace.WriteLine("arrival_ms,hint,service_ms,model");
            foreach (var r in workload.Requests)
            {
                trace.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{r.ArrivalMs:0.###},{(r.Hinted ? r.Model : "")},{r.ServiceMs:0.###},{r.Model}"));
            }
        }

        using var models = new StreamWriter(modelsPath);
        models.WriteLine("hint,bytes");
        foreach (var (model, bytes) in workload.ModelBytes)
        {
            models.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{model},{bytes}"));
        }
    }

    private static double ParseNumber(string text, string path, int line, string column) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && double.IsFinite(value) && value >= 0
            ? value
            : throw new FormatException($"{path}:{line}: {column} must be a number of at least 0, not '{text}'.");

    private static long ParseBytes(string text, string path, int line) =>
        long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) && value > 0
            ? value
            : throw new FormatException($"{path}:{line}: bytes must be a whole number above 0, not '{text}'.");

    private static IEnumerable<(string[] Cells, int Line)> ReadCsv(string path, string[] headers)
    {
        using var reader = new StreamReader(path);
        var first = reader.ReadLine()?.Trim();
        var header = headers.FirstOrDefault(h => string.Equals(h, first, StringComparison.Ordinal))
            ?? throw new FormatException($"{path}: the header must be {string.Join(" or ", headers.Select(h => $"'{h}'"))}, not '{first}'.");
        var columns = header.Split(',').Length;
        var number = 1;
        while (reader.ReadLine() is { } line)
        {
            number++;
            if (line.Trim().Length == 0)
            {
                continue;
            }

            var cells = line.Split(',');
            if (cells.Length != columns)
            {
                throw new FormatException($"{path}:{number}: expected {columns} columns ({header}).");
            }

            yield return (cells, number);
        }
    }
}
