using System.Net;
using System.Net.Sockets;
using FalHints.Host.Gateway;
using FalHints.Runner.Runners;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace FalHints.Host.Hosting;

/// <summary>A node that cannot start, for a reason that fits one line and names what to change.</summary>
public sealed class StartupException(string message) : Exception(message);

/// <summary>What <c>serve</c> checks before it starts anything: its ports, and that the node has something to serve.</summary>
public static class StartupChecks
{
    /// <summary>
    /// Every port the node will listen on (silo, Orleans client, HTTP) is free on the address it will bind, and no two are
    /// the same. Orleans listens with address reuse, so without this a second node on the same ports starts silently and
    /// takes a share of the first one's connections.
    /// </summary>
    /// <exception cref="StartupException">A port is taken or given twice.</exception>
    public static void EnsurePortsFree(IConfiguration configuration)
    {
        var anyAddress = ClusterSettings.From(configuration).UsesRedis;
        var endpoints = SiloSettings.From(configuration);
        var silo = anyAddress ? IPAddress.Any : IPAddress.Loopback;
        var http = configuration.GetSection(GatewayOptions.SectionName).Get<GatewayOptions>()?.Url ?? new GatewayOptions().Url;
        if (!Uri.TryCreate(http.Replace("://*", "://0.0.0.0", StringComparison.Ordinal).Replace("://+", "://0.0.0.0", StringComparison.Ordinal), UriKind.Absolute, out var httpUrl))
        {
            throw new StartupException($"{GatewayOptions.SectionName}:Url '{http}' is not an absolute URL such as {GatewayOptions.DefaultUrl}.");
        }

        var ports = new (string What, string Setting, IPAddress Address, int Port)[]
        {
            ("silo port", $"--silo-port or {SiloSettings.SectionName}:SiloPort", silo, endpoints.SiloPort),
            ("Orleans client port", $"--client-port or {SiloSettings.SectionName}:GatewayPort", silo, endpoints.GatewayPort),
            ("HTTP port", $"--http-port, --http-url or {GatewayOptions.SectionName}:Url", HttpAddress(httpUrl), httpUrl.Port),
        };
        for (var i = 0; i < ports.Length; i++)
        {
            for (var j = i + 1; j < ports.Length; j++)
            {
                if (ports[i].Port == ports[j].Port && ports[i].Port != 0)
                {
                    throw new StartupException($"The {ports[i].What} and the {ports[j].What} are both {ports[i].Port}; give each its own ({ports[j].Setting}).");
                }
            }
        }

        foreach (var (what, setting, address, port) in ports.Where(p => p.Port != 0))
        {
            if (!IsFree(address, port, out var reason))
            {
                throw new StartupException($"The {what} {port} is already in use on {address} ({reason}): is another FalHints node running? Stop it or choose another port ({setting}).");
            }
        }
    }

    /// <summary>
    /// The runner settings are valid (checked again when the silo starts), and give the node runners. A node with none: refused when it is the whole cluster (localhost clustering), since
    /// it would accept requests that nothing can run; in a Redis cluster it is a node that only routes, and the returned
    /// line says so. Null when the node has runners.
    /// </summary>
    /// <exception cref="StartupException">A localhost node with no runners.</exception>
    public static string? CheckRunners(IConfiguration configuration, int cudaDevices)
    {
        var options = new RunnerOptions();
        configuration.GetSection(RunnerOptions.SectionName).Bind(options);
        if (new RunnerOptionsValidator().Validate(null, options) is { Failed: true } invalid)
        {
            throw new OptionsValidationException(RunnerOptions.SectionName, typeof(RunnerOptions), invalid.Failures);
        }

        if (options.Devices.Count > 0 || cudaDevices > 0 || options.CpuRunners > 0)
        {
            return null;
        }

        if (!ClusterSettings.From(configuration).UsesRedis)
        {
            throw new StartupException($"{RunnerOptions.SectionName}:CpuRunners is 0 and TorchSharp sees no CUDA device, so this node would serve nothing; pass --runners N (or set {RunnerOptions.SectionName}:Devices).");
        }

        return $"This node has no runners ({RunnerOptions.SectionName}:CpuRunners is 0 and TorchSharp sees no CUDA device): it routes and serves HTTP, and other nodes of the cluster run the requests.";
    }

    private static IPAddress HttpAddress(Uri url) =>
        url.HostNameType is UriHostNameType.IPv4 or UriHostNameType.IPv6 && IPAddress.TryParse(url.DnsSafeHost, out var address) ? address
            : string.Equals(url.Host, "localhost", StringComparison.OrdinalIgnoreCase) ? IPAddress.Loopback
            : IPAddress.Any;

    private static bool IsFree(IPAddress address, int port, out string reason)
    {
        // A plain bind, without the reuse options servers set: it fails while anyone listens on the port.
        using var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.Bind(new IPEndPoint(address, port));
            socket.Listen();
            reason = string.Empty;
            return true;
        }
        catch (SocketException ex)
        {
            reason = ex.SocketErrorCode == SocketError.AccessDenied ? "permission denied" : ex.Message;
            return false;
        }
    }
}
