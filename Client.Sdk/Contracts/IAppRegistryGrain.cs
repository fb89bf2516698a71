using System.Collections.Immutable;

namespace FalHints.Client.Contracts;

/// <summary>
/// Which apps the cluster's silos host: every silo reports its apps (none when it has no runners) when it becomes active
/// and again periodically, so callers can refuse a request for an app nobody serves before any router or request grain
/// exists for it. One per cluster, key 0.
/// </summary>
[Alias("falhints.IAppRegistryGrain")]
public interface IAppRegistryGrain : IGrainWithIntegerKey
{
    /// <summary>Silo: the apps <paramref name="silo"/> hosts now, replacing what it reported before.</summary>
    [Alias("RegisterAsync")]
    Task RegisterAsync(string silo, ImmutableArray<string> appIds);

    /// <summary>The apps hosted by the active silos, and whether every active silo has reported yet.</summary>
    [Alias("GetAppsAsync")]
    Task<HostedApps> GetAppsAsync();
}

/// <summary>The apps the active silos host.</summary>
/// <param name="AppIds">Apps at least one active silo hosts, ordinal order.</param>
/// <param name="Complete">True when every active silo has reported: an app not listed is then served by none. False
/// while a silo that joined (or a registry that was just reactivated) has not reported yet.</param>
[GenerateSerializer, Immutable, Alias("falhints.HostedApps")]
public sealed record HostedApps(
    [property: Id(0)] ImmutableArray<string> AppIds,
    [property: Id(1)] bool Complete)
{
    /// <summary>True when <paramref name="appId"/> is certainly served by no active silo.</summary>
    public bool Refuses(string appId) => Complete && !AppIds.Contains(appId, StringComparer.Ordinal);
}
