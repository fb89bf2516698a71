using System.CommandLine;
using System.Globalization;
using System.Net;
using FalHints.Client.Apps;
using FalHints.Host.Hosting;
using FalHints.Runner.Models;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Orleans.Configuration;
using Spectre.Console;

namespace FalHints.Host.Commands;

/// <summary><c>falhints serve</c>: one silo with localhost clustering, its runners and the routers.</summary>
internal static class ServeCommand
{
    public static Command Create()
    {
        var models = CommonOptions.ModelStore();
        var gatewayPort = CommonOptions.GatewayPort();
        var runners = new Option<int?>("--runners") { Description = "CPU runners on this silo (default: FalHints:Runners:CpuRunners, 2)." };
        var siloName = new Option<string?>("--silo-name") { Description = "This silo's name, unique in the cluster (default: the host name)." };
        var siloPort = new Option<int>("--silo-port") { Description = "Silo-to-silo port.", DefaultValueFactory = _ => 11111 };
        var noFill = new Option<bool>("--no-fill") { Description = "Do not write demo models into an empty model store." };
        var command = new Command("serve", "Start a silo on localhost with runners serving falhints/any-model.")
        {
            models, runners, siloName, siloPort, gatewayPort, noFill,
        };
        command.SetAction((parse, cancellationToken) => RunAsync(
            new Dictionary<string, string?>
            {
                ["FalHints:ModelStore:Root"] = parse.GetValue(models),
                ["FalHints:Runners:CpuRunners"] = parse.GetValue(runners)?.ToString(CultureInfo.InvariantCulture),
                ["FalHints:Silo:Name"] = parse.GetValue(siloName),
                ["FalHints:Silo:SiloPort"] = parse.GetValue(siloPort).ToString(CultureInfo.InvariantCulture),
                ["FalHints:Silo:GatewayPort"] = parse.GetValue(gatewayPort).ToString(CultureInfo.InvariantCulture),
                ["FalHints:ModelStore:FillOnStart"] = parse.GetValue(noFill) ? "false" : null,
            },
            cancellationToken));
        return command;
    }

    private static async Task<int> RunAsync(Dictionary<string, string?> overrides, CancellationToken cancellationToken)
    {
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
        {
            ContentRootPath = AppContext.BaseDirectory,
            DisableDefaults = false,
        });
        HostConfiguration.Apply(builder.Configuration, overrides);
        var configuration = builder.Configuration;
        var storeRoot = HostConfiguration.ModelStoreRoot(configuration);
        var store = new ModelStore(storeRoot);
        if (configuration.GetValue("FalHints:ModelStore:FillOnStart", true) && store.List().Count == 0)
        {
            ModelStoreFiller.Fill(store, DemoModels.Defaults, cancellationToken);
        }

        var name = configuration["FalHints:Silo:Name"];
        name = string.IsNullOrWhiteSpace(name) ? Environment.MachineName : name;
        var siloPort = configuration.GetValue("FalHints:Silo:SiloPort", 11111);
        var gatewayPort = configuration.GetValue("FalHints:Silo:GatewayPort", 30000);
        builder.UseOrleans(silo =>
        {
            silo.UseLocalhostClustering(siloPort, gatewayPort, new IPEndPoint(IPAddress.Loopback, siloPort));
            silo.Configure<ClusterOptions>(o => (o.ClusterId, o.ServiceId) = ("falhints", "falhints"));
            silo.Configure<SiloOptions>(o => o.SiloName = name);
            silo.AddFalHintsDefaults(configuration, storeRoot);
        });

        using var host = builder.Build();
        await host.StartAsync(cancellationToken);
        var stored = store.List();
        var first = stored.Count > 0 ? stored[0].Id : "owner/name";
        AnsiConsole.MarkupLine($"[green]FalHints is serving[/] [bold]{AnyModel.AppId}[/] on silo [bold]{Markup.Escape(name)}[/] (gateway port {gatewayPort}, models in {Markup.Escape(storeRoot)}).");
        AnsiConsole.MarkupLine($"Submit a request:  [bold]dotnet run --project Silo.Host --no-build -- submit --model {Markup.Escape(first)} --prompt \"a red fox\" --out fox.png[/]");
        await host.WaitForShutdownAsync(cancellationToken);
        return 0;
    }
}
