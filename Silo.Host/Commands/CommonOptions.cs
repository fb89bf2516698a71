using System.CommandLine;

namespace FalHints.Host.Commands;

/// <summary>Options more than one command takes.</summary>
internal static class CommonOptions
{
    public static Option<string?> ModelStore() => new("--models")
    {
        Description = "Model store folder (default: FalHints:ModelStore:Root, else $XDG_DATA_HOME/falhints/models).",
    };

    public static Option<int> GatewayPort() => new("--gateway-port")
    {
        Description = "The silo's client gateway port.",
        DefaultValueFactory = _ => 30000,
    };
}
