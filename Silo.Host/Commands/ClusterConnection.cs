using FalHints.Host.Gateway;
using System.CommandLine;
using FalHints.Client.Requests;
using FalHints.Host.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace FalHints.Host.Commands;

/// <summary>The client side of the command line: how to reach a cluster, and the connection itself.</summary>
internal sealed class ClusterConnection : IAsyncDisposable
{
    private readonly IHost _host;

    private ClusterConnection(IHost host) => (_host, Client) = (host, new FalHintsClient(host.Services.GetRequiredService<IClusterClient>()));

    public FalHintsClient Client { get; }

    /// <summary>The options every client command takes, and a way to read them into configuration.</summary>
    public sealed class Options
    {
        public Option<int?> ClientPort { get; } = CommonOptions.ClientPort();

        public Option<string?> Cluster { get; } = CommonOptions.Cluster();

        public Option<string?> Redis { get; } = CommonOptions.Redis();

        public Option<double> ConnectTimeout { get; } = new("--connect-timeout") { Description = "Seconds to keep trying to reach the cluster.", DefaultValueFactory = _ => 15 };

        public Option<string?> Url { get; } = new("--url")
        {
            Description = $"Go through the HTTP gateway at this URL (e.g. {GatewayOptions.DefaultUrl}) instead of the Orleans client port.",
        };

        public Option<string?> Key { get; } = new("--key")
        {
            Description = "The HTTP gateway's API key, with --url (default: the FAL_KEY environment variable).",
        };

        /// <summary>Adds the options to <paramref name="command"/>; <c>--url</c> and <c>--key</c> only for commands that also speak HTTP.</summary>
        public void AddTo(Command command, bool http = true)
        {
            if (http)
            {
                command.Add(Url);
                command.Add(Key);
            }

            command.Add(ClientPort);
            command.Add(Cluster);
            command.Add(Redis);
            command.Add(ConnectTimeout);
        }

        public IConfiguration Read(ParseResult parse)
        {
            var configuration = new ConfigurationBuilder();
            HostConfiguration.Apply(configuration, CommonOptions.Overrides(parse, ClientPort, Cluster, Redis));
            return configuration.Build();
        }
    }

    /// <summary>Connects, or prints why it could not and returns null.</summary>
    public static async Task<ClusterConnection?> OpenAsync(ParseResult parse, Options options, CancellationToken cancellationToken)
    {
        var configuration = options.Read(parse);
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder();
        // The commands report failures themselves; Orleans' connection retries would only add noise.
        builder.Logging.ClearProviders();
        builder.UseOrleansClient(client => client.UseFalHintsClustering(configuration, TimeSpan.FromSeconds(parse.GetValue(options.ConnectTimeout))));
        var host = builder.Build();
        try
        {
            await host.StartAsync(cancellationToken);
            return new ClusterConnection(host);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            host.Dispose();
            var where = ClusterSettings.From(configuration).UsesRedis
                ? $"through Redis at {configuration["FalHints:Cluster:RedisConnection"]}"
                : $"on the localhost Orleans client port {SiloSettings.From(configuration).GatewayPort}";
            // A TLS mismatch (one side with FalHints:Tls, the other without, or an unaccepted certificate) looks like a
            // refused connection from here, so say so.
            var tls = ClusterTls.From(configuration) is null
                ? "; if the cluster uses TLS, set FalHints:Tls here too"
                : "; TLS is on here (FalHints:Tls): the cluster must use it too and accept this certificate";
            await Console.Error.WriteLineAsync($"error: cannot reach a FalHints silo {where} (is 'serve' running?{tls}): {ex.GetBaseException().Message}");
            return null;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _host.StopAsync(CancellationToken.None);
        _host.Dispose();
    }
}
