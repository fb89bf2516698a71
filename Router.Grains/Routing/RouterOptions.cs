namespace FalHints.Router.Routing;

/// <summary>Router settings (section <c>FalHints:Router</c>).</summary>
public sealed class RouterOptions
{
    /// <summary>The configuration section.</summary>
    public const string SectionName = "FalHints:Router";

    /// <summary>
    /// How long a request waits for the first runner of its app to announce itself before it fails with
    /// <c>app_not_found</c>. Keep it above the runners' heartbeat interval.
    /// </summary>
    public TimeSpan DiscoveryTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Tries per request when runners fail (not when the app itself reports an error); fal's default is 10.</summary>
    public int MaxAttempts { get; set; } = 10;
}
