using FalHints.Client.Contracts;
using FalHints.Router.Metrics;
using FalHints.Router.Placement;
using FalHints.Router.Requests;
using FalHints.Router.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace FalHints.Router.Hosting;

/// <summary>Registers routers and request grains on a silo.</summary>
public static class RouterSiloBuilderExtensions
{
    /// <summary>
    /// Lets this silo host router and request grains, with <see cref="RouterOptions"/>. The silo must also register
    /// grain storage named <see cref="Requests.RequestStorage.Name"/> for request state.
    /// </summary>
    public static ISiloBuilder AddFalHintsRouter(this ISiloBuilder builder, Action<RouterOptions>? configure = null)
    {
        var options = builder.Services.AddOptions<RouterOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        const string Section = RouterOptions.SectionName;
        foreach (var policy in PlacementPolicies.BuiltIn)
        {
            builder.Services.AddSingleton(policy);
        }

        builder.Services.TryAddSingleton(sp => new PlacementPolicyCatalog(sp.GetServices<PlacementPolicyRegistration>()));
        options.Validate<PlacementPolicyCatalog>((o, catalog) => catalog.Contains(o.Policy),
                $"{Section}:Policy must name a registered placement policy (built in: {string.Join(", ", PlacementPolicies.Names)}).")
            .Validate(o => o.DiscoveryTimeout > TimeSpan.Zero, $"{Section}:DiscoveryTimeout must be positive.")
            .Validate(o => o.MaxAttempts >= 1, $"{Section}:MaxAttempts must be at least 1.")
            .Validate(o => o.HeadBypassLimit >= 0, $"{Section}:HeadBypassLimit must not be negative.")
            .Validate(o => o.MaxQueueLength >= 1, $"{Section}:MaxQueueLength must be at least 1.")
            .Validate(o => o.RunnerTimeout > TimeSpan.Zero, $"{Section}:RunnerTimeout must be positive.")
            .Validate(o => o.SweepInterval > TimeSpan.Zero, $"{Section}:SweepInterval must be positive.")
            .Validate(o => o.ResumeInterval > TimeSpan.Zero, $"{Section}:ResumeInterval must be positive.")
            .Validate(o => o.InFlightCheckInterval > TimeSpan.Zero, $"{Section}:InFlightCheckInterval must be positive.")
            .Validate(o => o.ResultRetention > TimeSpan.Zero, $"{Section}:ResultRetention must be positive.")
            .ValidateOnStart();
        builder.Services.TryAddSingleton(TimeProvider.System);
        builder.Services.TryAddSingleton<RequestStoreLosses>();
        builder.Services.TryAddSingleton(typeof(GrainReferences<>));
        builder.Services.AddMetrics();
        builder.Services.TryAddSingleton<RouterMetrics>();
        return builder;
    }

    /// <summary>
    /// Registers a placement policy under <paramref name="name"/> (replacing a built-in one of that name), so
    /// <c>FalHints:Router:Policy</c> can name it. <paramref name="create"/> makes one instance per app's router.
    /// </summary>
    public static ISiloBuilder AddPlacementPolicy(this ISiloBuilder builder, string name, Func<PlacementPolicyServices, IPlacementPolicy> create)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(create);
        builder.Services.AddSingleton(new PlacementPolicyRegistration(name, create));
        return builder;
    }

    /// <summary>
    /// On start, hands every request <paramref name="builder"/>'s request store lists as unfinished back to its router
    /// (see <see cref="IUnfinishedRequests"/>); register the store as that service first.
    /// </summary>
    public static ISiloBuilder AddFalHintsRequestRecovery(this ISiloBuilder builder)
    {
        builder.Services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>, RequestRecovery>();
        return builder;
    }
}
