using System.Net;
using System.Net.Sockets;

namespace FalHints.Benchmarks;

/// <summary>
/// Loopback ports for the nodes a process starts, each handed out once. Asking the kernel for port 0 is not enough:
/// a port is free again the moment its probe closes, so two calls in a row can return the same one (a silo and its
/// client port on one number), and ports from the ephemeral range can be taken by any outgoing connection before the
/// node binds them. These come from below the ephemeral range (Linux: 32768-60999) and below the range Orleans'
/// test cluster allocates from (22300 up), are probed before they are handed out, and are never handed out twice.
/// </summary>
public static class LoopbackPorts
{
    private const int First = 15000;
    private const int Last = 22299;

    private static readonly object Gate = new();
    private static readonly HashSet<int> HandedOut = [];

    // Each process starts at its own place in the range, so two test or benchmark processes side by side rarely probe
    // the same ports.
    private static int _next = First + (Environment.ProcessId * 97 % (Last - First + 1));

    /// <summary>A loopback port nothing listened on when it was probed, not handed out before by this process.</summary>
    public static int Next()
    {
        lock (Gate)
        {
            for (var tried = 0; tried <= Last - First; tried++)
            {
                var port = _next;
                _next = port == Last ? First : port + 1;
                if (HandedOut.Contains(port) || !CanBind(port))
                {
                    continue;
                }

                HandedOut.Add(port);
                return port;
            }
        }

        throw new InvalidOperationException($"No free loopback port left between {First} and {Last}.");
    }

    private static bool CanBind(int port)
    {
        try
        {
            using var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
