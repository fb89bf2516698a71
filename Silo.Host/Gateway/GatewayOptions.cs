namespace FalHints.Host.Gateway;

/// <summary>The fal-compatible HTTP gateway (section <c>FalHints:Gateway</c>).</summary>
public sealed class GatewayOptions
{
    /// <summary>The configuration section.</summary>
    public const string SectionName = "FalHints:Gateway";

    /// <summary>Where the gateway listens by default: loopback, port 8080.</summary>
    public const string DefaultUrl = "http://127.0.0.1:8080";

    /// <summary>Where the gateway listens; loopback unless told otherwise (<see cref="DefaultUrl"/>).</summary>
    public string Url { get; set; } = DefaultUrl;

    /// <summary>Keys callers must send as <c>Authorization: Key ...</c>; none configured (and no keys file): no key needed. Remove one to revoke it.</summary>
    public IList<string> ApiKeys { get; } = [];

    /// <summary>
    /// A file of further keys, one per line ('#' starts a comment), re-read within a second of a change, so keys are
    /// added and revoked without a restart (a mounted secret, say). Set, it makes keys required even while empty.
    /// </summary>
    public string? ApiKeysFile { get; set; }

    /// <summary>The largest request body accepted, in bytes.</summary>
    public long MaxBodyBytes { get; set; } = 10L << 20;

    /// <summary>
    /// How much of a body over <see cref="MaxBodyBytes"/> the gateway reads (and drops) before it answers 413, so clients
    /// that send a whole body before reading the answer (Python's urllib, say) hear the 413 instead of a reset.
    /// </summary>
    public long MaxDrainBytes { get; set; } = 64L << 20;

    /// <summary>The longest request line (method, target, version) answered with anything but 414, in bytes.</summary>
    public int MaxRequestLineBytes { get; set; } = 8 << 10;

    /// <summary>The most bytes of request headers answered with anything but 431.</summary>
    public int MaxHeaderBytes { get; set; } = 32 << 10;

    /// <summary>
    /// How long a submission waits for an unreachable request store (Redis down) before it is answered with a
    /// retryable 503 <c>cluster_unavailable</c>. At most a minute.
    /// </summary>
    public TimeSpan StorageUnavailableWait { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Bytes of output files (images) the gateway keeps to serve by URL; the oldest go first.</summary>
    public long FileCacheBytes { get; set; } = 256L << 20;
}
