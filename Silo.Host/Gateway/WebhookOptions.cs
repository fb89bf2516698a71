using System.Net;
using System.Net.Sockets;

namespace FalHints.Host.Gateway;

/// <summary>Webhooks, fal's <c>?fal_webhook=URL</c> on a queue submission (section <c>FalHints:Gateway:Webhooks</c>).</summary>
public sealed class WebhookOptions
{
    /// <summary>The configuration section.</summary>
    public const string SectionName = "FalHints:Gateway:Webhooks";

    /// <summary>
    /// Where webhooks may go: host names (<c>hooks.example.com</c>), wildcards (<c>*.example.com</c>), IP addresses and
    /// CIDR ranges (<c>10.1.0.0/16</c>). Empty (the default): loopback only (<c>localhost</c>, 127.0.0.0/8, ::1). A
    /// submission naming any other host is refused, so callers cannot make the gateway post to addresses the operator
    /// has not allowed. An IP address is allowed only by an IP or range entry, never by a host name.
    /// </summary>
    public IList<string> AllowedHosts { get; } = [];

    /// <summary>Deliveries tried per webhook, the first included.</summary>
    public int MaxAttempts { get; set; } = 10;

    /// <summary>The wait before the second attempt; it doubles after each failure, up to <see cref="MaxRetryDelay"/>.</summary>
    public TimeSpan FirstRetryDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>The longest wait between attempts.</summary>
    public TimeSpan MaxRetryDelay { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>How long one delivery may take before it counts as failed (fal's: 15 s).</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>The entries in force: <see cref="AllowedHosts"/>, or loopback when it is empty.</summary>
    public IReadOnlyList<string> EffectiveHosts => AllowedHosts.Count > 0 ? [.. AllowedHosts] : ["localhost", "127.0.0.0/8", "::1"];

    /// <summary>The wait after failed attempt <paramref name="attempt"/> (1 for the first).</summary>
    public TimeSpan DelayAfter(int attempt)
    {
        var delay = FirstRetryDelay * Math.Pow(2, Math.Min(attempt - 1, 30));
        return delay > MaxRetryDelay ? MaxRetryDelay : delay;
    }

    /// <summary>Whether <paramref name="entry"/> is a host name, a wildcard, an IP address or a CIDR range.</summary>
    public static bool IsValidEntry(string entry) =>
        TryParseRange(entry, out _, out _) || IPAddress.TryParse(entry, out _)
        || Uri.CheckHostName(entry.StartsWith("*.", StringComparison.Ordinal) ? entry[2..] : entry) == UriHostNameType.Dns;

    /// <summary>Checks a webhook URL against the allow-list; on failure <paramref name="error"/> says why.</summary>
    public bool TryAllow(string? url, out Uri target, out string? error)
    {
        target = null!;
        if (!Uri.TryCreate(url, UriKind.Absolute, out var parsed) || (parsed.Scheme != Uri.UriSchemeHttp && parsed.Scheme != Uri.UriSchemeHttps))
        {
            error = $"fal_webhook '{url}' is not an absolute http or https URL.";
            return false;
        }

        if (!string.IsNullOrEmpty(parsed.UserInfo))
        {
            error = "fal_webhook must not carry credentials in the URL.";
            return false;
        }

        var host = parsed.DnsSafeHost;
        var allowed = IPAddress.TryParse(host, out var address)
            ? EffectiveHosts.Any(e => Contains(e, address))
            : EffectiveHosts.Any(e => Matches(e, host));
        target = parsed;
        error = allowed ? null
            : $"fal_webhook host '{host}' is not allowed here; the operator lists webhook hosts in {SectionName}:AllowedHosts ({(AllowedHosts.Count == 0 ? "empty: loopback only" : string.Join(", ", AllowedHosts))}).";
        return allowed;
    }

    private static bool Matches(string entry, string host) =>
        entry.StartsWith("*.", StringComparison.Ordinal)
            ? host.EndsWith(entry[1..], StringComparison.OrdinalIgnoreCase) && host.Length > entry.Length - 1
            : string.Equals(entry, host, StringComparison.OrdinalIgnoreCase);

    private static bool Contains(string entry, IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        if (IPAddress.TryParse(entry, out var single))
        {
            return single.Equals(address);
        }

        if (!TryParseRange(entry, out var network, out var prefix) || network.AddressFamily != address.AddressFamily)
        {
            return false;
        }

        var (a, b) = (network.GetAddressBytes(), address.GetAddressBytes());
        for (var bit = 0; bit < prefix; bit++)
        {
            var mask = 0x80 >> (bit % 8);
            if ((a[bit / 8] & mask) != (b[bit / 8] & mask))
            {
                return false;
            }
        }

        return true;
    }

    private static bool TryParseRange(string entry, out IPAddress network, out int prefix)
    {
        (network, prefix) = (IPAddress.None, 0);
        var slash = entry.IndexOf('/', StringComparison.Ordinal);
        if (slash < 0 || !IPAddress.TryParse(entry[..slash], out var parsed) || !int.TryParse(entry[(slash + 1)..], out prefix))
        {
            return false;
        }

        network = parsed;
        return prefix >= 0 && prefix <= (parsed.AddressFamily == AddressFamily.InterNetworkV6 ? 128 : 32);
    }
}
