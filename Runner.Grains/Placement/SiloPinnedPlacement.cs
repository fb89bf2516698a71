using Orleans.Placement;
using Orleans.Runtime.Placement;

namespace FalHints.Runner.Placement;

/// <summary>
/// Places a grain keyed <c>{silo}/{rest}</c> on the silo named in its key, and nowhere else: when that
/// silo is not an active member, activation fails instead of moving the grain.
/// </summary>
[GenerateSerializer, Immutable, Alias("falhints.SiloPinnedPlacement")]
public sealed class SiloPinnedPlacement : PlacementStrategy
{
    /// <summary>The shared instance.</summary>
    public static SiloPinnedPlacement Instance { get; } = new();
}

/// <summary>Marks a grain class for <see cref="SiloPinnedPlacement"/>.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false)]
public sealed class SiloPinnedPlacementAttribute : PlacementAttribute
{
    /// <summary>Creates the attribute.</summary>
    public SiloPinnedPlacementAttribute()
        : base(SiloPinnedPlacement.Instance)
    {
    }
}

/// <summary>Finds the active silo whose name the grain key starts with.</summary>
internal sealed class SiloPinnedPlacementDirector(IClusterMembershipService membership) : IPlacementDirector
{
    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        var key = target.GrainIdentity.Key.ToString()!;
        if (!RunnerKey.TryParse(key, out var parsed))
        {
            throw new ArgumentException($"Grain key '{key}' is not of the form '{{silo}}/{{device}}'.", nameof(target));
        }

        var runner = parsed.Value;
        var members = membership.CurrentSnapshot.Members;
        foreach (var address in context.GetCompatibleSilos(target))
        {
            if (members.TryGetValue(address, out var member) && member.Status == SiloStatus.Active
                && string.Equals(member.Name, runner.Silo, StringComparison.Ordinal))
            {
                return Task.FromResult(address);
            }
        }

        throw new SiloUnavailableException($"Runner '{key}' is pinned to silo '{runner.Silo}', which is not an active member of the cluster.");
    }
}
