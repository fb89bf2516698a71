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
    /// <summary>Silo: the apps <paramref name="silo"/> hosts now, with what each declares to routers, replacing what it reported before.</summary>
    [Alias("RegisterAsync")]
    Task RegisterAsync(string silo, ImmutableArray<AppDeclaration> apps);

    /// <summary>The apps hosted by the active silos, and whether every active silo has reported yet.</summary>
    [Alias("GetAppsAsync")]
    Task<HostedApps> GetAppsAsync();

    /// <summary>
    /// What an active silo declared for <paramref name="appId"/> (its hint field, its input limits), so a router knows
    /// them from its first request on instead of from its runners' first reports; null when no active silo declared it.
    /// </summary>
    [Alias("GetDeclarationAsync")]
    Task<AppDeclaration?> GetDeclarationAsync(string appId);
}

/// <summary>What an app declares to routers before any runner reports.</summary>
/// <param name="AppId">The app.</param>
/// <param name="HintField">A top-level input field whose string value is the hint when the caller sends none.</param>
/// <param name="InputLimits">Limits on the app's input that routers check when a request is submitted.</param>
[GenerateSerializer, Immutable, Alias("falhints.AppDeclaration")]
public sealed record AppDeclaration(
    [property: Id(0)] string AppId,
    [property: Id(1)] string? HintField,
    [property: Id(2)] ImmutableArray<InputLimit> InputLimits = default)
{
    /// <summary>The declaration as routers read it from runners' events (no inference measured yet).</summary>
    public AppRouting ToRouting() => new(HintField, MeanInferenceMs: 0, InputLimits);
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
