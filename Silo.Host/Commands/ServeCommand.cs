using System.CommandLine;
using System.Globalization;
using FalHints.Client.Apps;
using FalHints.Host.Gateway;
using FalHints.Host.Hosting;
using FalHints.Runner.Hosting;
using FalHints.Runner.Models;
using FalHints.Runner.Runners;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace FalHints.Host.Commands;

/// <summary><c>falhints serve</c>: one silo (localhost or Redis clustering), its runners and the routers.</summary>
internal static class ServeCommand
{
    public static Command Create()
    {
        var models = CommonOptions.ModelStore();
        var clientPort = CommonOptions.ClientPort();
        var runners = new Option<int?>("--runners") { Description = "CPU runners on this silo (default: FalHints:Runners:CpuRunners, 2)." };
        var siloName = new Option<string?>("--silo-name") { Description = "This silo's name, unique in the cluster (default: the host name)." };
        var siloPort = new Option<int?>("--silo-port") { Description = $"Silo-to-silo port (default: {SiloSettings.SectionName}:SiloPort, {SiloSettings.DefaultSiloPort})." };
        var advertise = new Option<string?>("--advertise") { Description = "The IP address other silos and clients reach this silo at (Redis mode; default: this host's address)." };
        var data = new Option<string?>("--data") { Description = "Folder of this node's request store, requests.db (default: FalHints:Storage:Path, else ~/.local/share/falhints)." };
        var storage = new Option<string?>("--storage") { Description = "Where request state is kept: sqlite (the default on one node), redis (the default with --cluster redis) or memory (lost on restart)." };
        var noFill = new Option<bool>("--no-fill") { Description = "Do not write demo models into an empty model store." };
        var httpPort = new Option<int?>("--http-port") { Description = $"Port of the HTTP gateway (fal's API), dashboard and runners view on 127.0.0.1 (default: {GatewayOptions.SectionName}:Url, {GatewayOptions.DefaultUrl})." };
        var httpUrl = new Option<string?>("--http-url") { Description = "Full URL the HTTP gateway binds to, e.g. http://0.0.0.0:8080 to leave loopback." };
        var cluster = CommonOptions.Cluster();
        var redis = CommonOptions.Redis();
        var command = new Command("serve", "Start a silo with runners serving falhints/any-model (localhost clustering unless told otherwise).")
        {
            models, runners, siloName, siloPort, clientPort, advertise, cluster, redis, httpPort, httpUrl, data, storage, noFill,
        };
        command.SetAction((parse, cancellationToken) =>
        {
            var overrides = CommonOptions.Overrides(parse, clientPort, cluster, redis);
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
        // Everything that can be checked is checked before the model store is filled or anything listens.
        var settings = new ConfigurationBuilder();
        HostConfiguration.Apply(settings, overrides);
        var configuration = settings.Build();
        StartupChecks.EnsurePortsFree(configuration);
        var cuda = TorchSharp.torch.cuda.is_available() ? TorchSharp.torch.cuda.device_count() : 0;
        var noRunners = StartupChecks.CheckRunners(configuration, cuda);

        await using var host = FalHintsWebHost.Build(overrides, cancellationToken);
        await host.StartAsync(cancellationToken);
        foreach (var line in Banner(host, noRunners))
        {
            Console.WriteLine(line);
        }

        await host.WaitForShutdownAsync(cancellationToken);
        return host.Services.GetRequiredService<NodeHealth>().ExitCode;
    }

    /// <summary>What is serving where, with the commands that reach it as they must be typed for this node.</summary>
    private static IEnumerable<string> Banner(WebApplication host, string? noRunners)
    {
        var configuration = host.Configuration;
        var stored = host.Services.GetRequiredService<ModelStore>().List();
        var model = stored.Count > 0 ? stored[0].Id : "owner/name";
        var name = host.Services.GetRequiredService<ILocalSiloDetails>().Name;
        var cluster = ClusterSettings.From(configuration);
        var endpoints = SiloSettings.From(configuration);
        var (siloPort, clientPort) = (endpoints.SiloPort, endpoints.GatewayPort);
        var http = (host.Urls.FirstOrDefault() ?? host.Services.GetRequiredService<IOptions<GatewayOptions>>().Value.Url).TrimEnd('/');
        var runners = new RunnerOptions();
        configuration.GetSection(RunnerOptions.SectionName).Bind(runners);
        var devices = RunnerStarter.ResolveDevices(runners);
        var keyed = host.Services.GetRequiredService<ApiKeyStore>().Required;
        var submit = $"dotnet run --project Silo.Host --no-build -- submit --model {model} --prompt \"a red fox\" --out fox.png";
        var viaClient = cluster.UsesRedis
            ? $" --cluster redis --redis {cluster.RedisConnection}"
            : clientPort == SiloSettings.DefaultGatewayPort ? string.Empty : string.Create(CultureInfo.InvariantCulture, $" --client-port {clientPort}");

        yield return $"FalHints is serving {AnyModel.AppId} on silo {name} ({cluster.Mode} clustering; {devices.Count} runners{(devices.Count > 0 ? ": " + string.Join(", ", devices) : string.Empty)}; models in {host.Services.GetRequiredService<ModelStore>().Root}).";
        if (noRunners is not null)
        {
            yield return $"warning: {noRunners}";
        }

        yield return string.Create(CultureInfo.InvariantCulture, $"  silo port {siloPort}, Orleans client port {clientPort}, HTTP gateway {http}{(keyed ? " (API key required)" : string.Empty)}");
        yield return $"  dashboard {http}/dashboard, runners {http}/runners, OpenAPI {http}/{AnyModel.AppId}/openapi.json";
        yield return $"Submit through the Orleans client port:  {submit}{viaClient}";
        yield return $"Submit through the HTTP gateway:        {submit} --url {http}{(keyed ? " --key <key>" : string.Empty)}";
    }
}
