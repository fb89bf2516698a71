using System.Globalization;

namespace FalHints.Benchmarks;

/// <summary>What every node a benchmark starts in its process shares: loopback ports, its model store, logs on stderr.</summary>
internal static class BenchNode
{
    /// <summary>
    /// Settings for a whole node named <paramref name="siloName"/> on free loopback ports, serving the store at
    /// <paramref name="storeRoot"/> as it is (no fill), its gateway at <paramref name="gatewayUrl"/> (default: a free
    /// port), logging warnings to standard error so standard output keeps only the figures. Callers add their own.
    /// </summary>
    public static Dictionary<string, string?> Settings(string siloName, string storeRoot, string? gatewayUrl = null) => new()
    {
        ["FalHints:ModelStore:Root"] = storeRoot,
        ["FalHints:ModelStore:FillOnStart"] = "false",
        ["FalHints:Silo:Name"] = siloName,
        ["FalHints:Silo:SiloPort"] = FreePort(),
        ["FalHints:Silo:GatewayPort"] = FreePort(),
        ["FalHints:Gateway:Url"] = gatewayUrl ?? $"http://127.0.0.1:{FreePort()}",

        // The figures are the router's: request state in memory, so no run inherits or leaves a request store.
        ["FalHints:Storage:Mode"] = "memory",
        ["Logging:LogLevel:Default"] = "Warning",
        ["Logging:Console:LogToStandardErrorThreshold"] = "Trace",
    };

    /// <summary>A loopback port nothing listens on now, as text for configuration.</summary>
    public static string FreePort() => LoopbackPorts.Next().ToString(CultureInfo.InvariantCulture);
}
