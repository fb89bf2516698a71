using FalHints.Client.Contracts;
using FalHints.Router.Metrics;
using FalHints.Router.Placement;
using FalHints.Router.Requests;
using FalHints.Router.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace FalHints.Router.Hosting;

/// <summary>Registers routers and request grains on a silo.</summary>
public static class RouterSiloBuilderExtensions
{
    /// <summary>
    /// Lets this silo host router and request grains, with <see cref="RouterOptions"/>. The silo must also register
    /// grain storage named <see cref="Requests.RequestStorage.Name"/> for request state.
    /// </summary>
    public static ISiloBuilder AddFalHintsRouter(this ISiloBuilder builder, Action<RouterOptions>? configure = null) =>
        builder.AddFalHintsRouter(options => options.Configure(configure ?? (_ => { })));

    /// <summary>Lets this silo host router and request grains, with <see cref="RouterOptions"/> bound from <paramref name="section"/>.</summary>
    public static ISiloBuilder AddFalHintsRouter(this ISiloBuilder builder, IConfiguration section) =>
        builder.AddFalHintsRouter(options => options.Bind(section));

    private static ISiloBuilder AddFalHintsRouter(this ISiloBuilder builder, Action<OptionsBuilder<RouterOptions>> bind)
    {
        var options = builder.Services.AddOptions<RouterOptions>();
        bind(options);

        foreach (var policy in PlacementPolicies.BuiltIn)
        {
            builder.Services.AddSingleton(policy);
        }

        builder.Services.TryAddSingleton(sp => new PlacementPolicyCatalog(sp.GetServices<PlacementPolicyRegistration>()));
        options.ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<RouterOptions>, RouterOptionsValidator>();
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
