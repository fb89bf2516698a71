using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace FalHints.Benchmarks;

/// <summary>Free loopback ports for the nodes a benchmark starts in its process.</summary>
internal static class LocalPorts
{
    /// <summary>A port nothing listens on now, as text for configuration.</summary>
    public static string Free()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port.ToString(CultureInfo.InvariantCulture);
    }
}
