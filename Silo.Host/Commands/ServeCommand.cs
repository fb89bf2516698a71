using System.CommandLine;
using System.Globalization;
using FalHints.Client.Apps;
using FalHints.Host.Hosting;
using FalHints.Runner.Models;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Spectre.Console;

namespace FalHints.Host.Commands;

/// <summary><c>falhints serve</c>: one silo (localhost or Redis clustering), its runners and the routers.</summary>
internal static class ServeCommand
{
    public static Command Create()
    {
        var models = CommonOptions.ModelStore();
        var gatewayPort = CommonOptions.GatewayPort();
        var runners = new Option<int?>("--runners") { Description = "CPU runners on this silo (default: FalHints:Runners:CpuRunners, 2)." };
        var siloName = new Option<string?>("--silo-name") { Description = "This silo's name, unique in the cluster (default: the host name)." };
        var siloPort = new Option<int?>("--silo-port") { Description = "Silo-to-silo port (default: FalHints:Silo:SiloPort, 11111)." };
        var advertise = new Option<string?>("--advertise") { Description = "The IP address other silos and clients reach this silo at (Redis mode; default: this host's address)." };
        var noFill = new Option<bool>("--no-fill") { Description = "Do not write demo models into an empty model store." };
        var cluster = CommonOptions.Cluster();
        var redis = CommonOptions.Redis();
        var command = new Command("serve", "Start a silo with runners serving falhints/any-model (localhost clustering unless told otherwise).")
        {
            models, runners, siloName, siloPort, gatewayPort, advertise, cluster, redis, noFill,
        };
        command.SetAction((parse, cancellationToken) =>
        {
            var overrides = CommonOptions.Overrides(parse, gatewayPort, cluster, redis);
            overrides["FalHints:ModelStore:Root"] = parse.GetValue(models);
            overrides["FalHints:Runners:CpuRunners"] = parse.GetValue(runners)?.ToString(CultureInfo.InvariantCulture);
            overrides["FalHints:Silo:Name"] = parse.GetValue(siloName);
            overrides["FalHints:Silo:SiloPort"] = parse.GetValue(siloPort)?.ToString(CultureInfo.InvariantCulture);
            overrides["FalHints:Silo:AdvertisedAddress"] = parse.GetValue(advertise);
            overrides["FalHints:ModelStore:FillOnStart"] = parse.GetValue(noFill) ? "false" : null;
            return RunAsync(overrides, cancellationToken);
        });
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
        var gatewayPort = configuration.GetValue("FalHints:Silo:GatewayPort", 30000);
        var mode = ClusterSettings.From(configuration).Mode;
        // A stopping silo drains its runners first (see RunnerOptions.DrainTimeout); give it the time.
        var drain = configuration.GetValue("FalHints:Runners:DrainTimeout", TimeSpan.FromMinutes(1));
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = drain + TimeSpan.FromSeconds(30));
        builder.UseOrleans(silo =>
        {
            silo.UseFalHintsClustering(configuration, name);
            silo.AddFalHintsDefaults(configuration, storeRoot);
        });

        using var host = builder.Build();
        await host.StartAsync(cancellationToken);
        var stored = store.List();
        var first = stored.Count > 0 ? stored[0].Id : "owner/name";
        AnsiConsole.MarkupLine($"[green]FalHints is serving[/] [bold]{AnyModel.AppId}[/] on silo [bold]{Markup.Escape(name)}[/] ({mode} clustering, gateway port {gatewayPort}, models in {Markup.Escape(storeRoot)}).");
        AnsiConsole.MarkupLine($"Submit a request:  [bold]dotnet run --project Silo.Host --no-build -- submit --model {Markup.Escape(first)} --prompt \"a red fox\" --out fox.png[/]");
        await host.WaitForShutdownAsync(cancellationToken);
        return 0;
    }
}
