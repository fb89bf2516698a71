using System.Collections.Immutable;
using FalHints.Client.Contracts;

namespace FalHints.Runner.Apps;

/// <summary>
/// The cluster's registry of hosted apps, in memory: silos report themselves when they become active and every
/// heartbeat interval after that, so a registry reactivated elsewhere is whole again within one interval (and says it is
/// not complete until then). Silos that left the membership are left out of every answer.
/// </summary>
public sealed class AppRegistryGrain(IClusterMembershipService membership) : Grain, IAppRegistryGrain
{
    private readonly Dictionary<string, ImmutableArray<AppDeclaration>> _silos = new(StringComparer.Ordinal);

    /// <inheritdoc />
    public Task RegisterAsync(string silo, ImmutableArray<AppDeclaration> apps)
    {
        _silos[silo] = apps.IsDefault ? [] : apps;
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task<HostedApps> GetAppsAsync()
    {
        var active = ForgetInactive();
        var apps = _silos.Values.SelectMany(a => a).Select(a => a.AppId).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToImmutableArray();
        return Task.FromResult(new HostedApps(apps, active.All(_silos.ContainsKey)));
    }

    /// <inheritdoc />
    public Task<AppDeclaration?> GetDeclarationAsync(string appId)
    {
        ForgetInactive();

        // Silos running different versions of an app may differ: the one that reported last wins, as runners' events do.
        return Task.FromResult(_silos.Values.SelectMany(a => a).LastOrDefault(a => string.Equals(a.AppId, appId, StringComparison.Ordinal)));
    }

    private HashSet<string> ForgetInactive()
    {
        var active = membership.CurrentSnapshot.Members.Values
            .Where(m => m.Status == SiloStatus.Active).Select(m => m.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var gone in _silos.Keys.Where(s => !active.Contains(s)).ToList())
        {
            _silos.Remove(gone);
        }

        return active;
    }
}
