using FalHints.Host.Hosting;
using System.CommandLine;

namespace FalHints.Host.Commands;

/// <summary>Options more than one command takes.</summary>
internal static class CommonOptions
{
    public static Option<string?> ModelStore() => new("--models")
    {
        Description = "Model store folder (default: FalHints:ModelStore:Root, else $XDG_DATA_HOME/falhints/models).",
    };

    /// <summary>Orleans' client port (Orleans calls it the gateway port, hence the old name <c>--gateway-port</c>).</summary>
    public static Option<int?> ClientPort() => new("--client-port", "--gateway-port")
    {
        Description = $"The silo's Orleans client port, where the Orleans client and these commands connect (default: {SiloSettings.SectionName}:GatewayPort, {SiloSettings.DefaultGatewayPort}).",
    };

    /// <summary>Prints stack traces with errors (a recursive option of the root command).</summary>
    public static Option<bool> Verbose { get; } = new("--verbose")
    {
        Description = "Print the full exception, with its stack trace, when a command fails.",
        Recursive = true,
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
    public static Dictionary<string, string?> Overrides(ParseResult parse, Option<int?> clientPort, Option<string?> cluster, Option<string?> redis) => new()
    {
        ["FalHints:Silo:GatewayPort"] = parse.GetValue(clientPort)?.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["FalHints:Cluster:Mode"] = parse.GetValue(cluster),
        ["FalHints:Cluster:RedisConnection"] = parse.GetValue(redis),
    };
}
