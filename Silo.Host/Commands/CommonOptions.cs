using System.CommandLine;

namespace FalHints.Host.Commands;

/// <summary>Options more than one command takes.</summary>
internal static class CommonOptions
{
    public static Option<string?> ModelStore() => new("--models")
    {
        Description = "Model store folder (default: FalHints:ModelStore:Root, else $XDG_DATA_HOME/falhints/models).",
    };

    public static Option<int?> GatewayPort() => new("--gateway-port")
    {
        Description = "The silo's client gateway port (default: FalHints:Silo:GatewayPort, 30000).",
    };

    public static Option<string?> Cluster() => new("--cluster")
    {
        Description = "Clustering: localhost (default: one silo, nothing to install) or redis.",
    };

    public static Option<string?> Redis() => new("--redis")
    {
        Description = "Redis connection string for --cluster redis, e.g. 127.0.0.1:6379.",
    };

    /// <summary>The configuration keys these options override.</summary>
    public static Dictionary<string, string?> Overrides(ParseResult parse, Option<int?> gatewayPort, Option<string?> cluster, Option<string?> redis) => new()
    {
        ["FalHints:Silo:GatewayPort"] = parse.GetValue(gatewayPort)?.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["FalHints:Cluster:Mode"] = parse.GetValue(cluster),
        ["FalHints:Cluster:RedisConnection"] = parse.GetValue(redis),
    };
}
