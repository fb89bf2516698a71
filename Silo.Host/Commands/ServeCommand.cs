using System.CommandLine;
using System.Globalization;
using FalHints.Client.Apps;
using FalHints.Host.Gateway;
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
        var data = new Option<string?>("--data") { Description = "Folder of this node's request store, requests.db (default: FalHints:Storage:Path, else ~/.local/share/falhints)." };
        var storage = new Option<string?>("--storage") { Description = "Where request state is kept: sqlite (the default on one node), redis (the default with --cluster redis) or memory (lost on restart)." };
        var noFill = new Option<bool>("--no-fill") { Description = "Do not write demo models into an empty model store." };
        var httpPort = new Option<int?>("--http-port") { Description = "Port of the HTTP gateway, dashboard and runners view on 127.0.0.1 (default: FalHints:Gateway:Url, http://127.0.0.1:8080)." };
        var httpUrl = new Option<string?>("--http-url") { Description = "Full URL the HTTP gateway binds to, e.g. http://0.0.0.0:8080 to leave loopback." };
        var cluster = CommonOptions.Cluster();
        var redis = CommonOptions.Redis();
        var command = new Command("serve", "Start a silo with runners serving falhints/any-model (localhost clustering unless told otherwise).")
        {
            models, runners, siloName, siloPort, gatewayPort, advertise, cluster, redis, httpPort, httpUrl, data, storage, noFill,
        };
        command.SetAction((parse, cancellationToken) =>
        {
            var overrides = CommonOptions.Overrides(parse, gatewayPort, cluster, redis);
            overrides["FalHints:ModelStore:Root"] = parse.GetValue(models);
            overrides["FalHints:Runners:CpuRunners"] = parse.GetValue(runners)?.ToString(CultureInfo.InvariantCulture);
            overrides["FalHints:Silo:Name"] = parse.GetValue(siloName);
            overrides["FalHints:Silo:SiloPort"] = parse.GetValue(siloPort)?.ToString(CultureInfo.InvariantCulture);
            overrides["FalHints:Silo:AdvertisedAddress"] = parse.GetValue(advertise);
            overrides["FalHints:Storage:Path"] = parse.GetValue(data) is { } folder ? Path.Combine(folder, StorageSettings.DefaultFileName) : null;
            overrides["FalHints:Storage:Mode"] = parse.GetValue(storage);
            overrides["FalHints:ModelStore:FillOnStart"] = parse.GetValue(noFill) ? "false" : null;
            overrides["FalHints:Gateway:Url"] = parse.GetValue(httpUrl)
                ?? (parse.GetValue(httpPort) is { } port ? $"http://127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}" : null);
            return RunAsync(overrides, cancellationToken);
        });
        return command;
    }

    private static async Task<int> RunAsync(Dictionary<string, string?> overrides, CancellationToken cancellationToken)
    {
        await using var host = FalHintsWebHost.Build(overrides, cancellationToken);
        await host.StartAsync(cancellationToken);
        var configuration = host.Configuration;
        var store = host.Services.GetRequiredService<ModelStore>();
        var stored = store.List();
        var first = stored.Count > 0 ? stored[0].Id : "owner/name";
        var name = host.Services.GetRequiredService<ILocalSiloDetails>().Name;
        var mode = ClusterSettings.From(configuration).Mode;
        var gatewayPort = configuration.GetValue("FalHints:Silo:GatewayPort", 30000);
        var http = configuration.GetSection(GatewayOptions.SectionName).Get<GatewayOptions>()?.Url ?? new GatewayOptions().Url;
        AnsiConsole.MarkupLine($"[green]FalHints is serving[/] [bold]{AnyModel.AppId}[/] on silo [bold]{Markup.Escape(name)}[/] ({mode} clustering, gateway port {gatewayPort}, HTTP {Markup.Escape(http)}, models in {Markup.Escape(store.Root)}).");
        AnsiConsole.MarkupLine($"Submit a request:  [bold]dotnet run --project Silo.Host --no-build -- submit --model {Markup.Escape(first)} --prompt \"a red fox\" --out fox.png[/]");
        await host.WaitForShutdownAsync(cancellationToken);
        return host.Services.GetRequiredService<NodeHealth>().ExitCode;
    }
}
