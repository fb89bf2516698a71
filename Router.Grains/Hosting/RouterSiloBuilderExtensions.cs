using FalHints.Router.Placement;
using FalHints.Router.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace FalHints.Router.Hosting;

/// <summary>Registers routers on a silo.</summary>
public static class RouterSiloBuilderExtensions
{
    /// <summary>Lets this silo host router grains, with <see cref="RouterOptions"/>.</summary>
    public static ISiloBuilder AddFalHintsRouter(this ISiloBuilder builder, Action<RouterOptions>? configure = null)
    {
        var options = builder.Services.AddOptions<RouterOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        options.Validate(o => o.DiscoveryTimeout > TimeSpan.Zero, $"{RouterOptions.SectionName}:DiscoveryTimeout must be positive.")
            .Validate(o => o.MaxAttempts >= 1, $"{RouterOptions.SectionName}:MaxAttempts must be at least 1.")
            .ValidateOnStart();
        builder.Services.TryAddSingleton(TimeProvider.System);
        builder.Services.AddSingleton<IPlacementPolicy, HintAffinityPolicy>();
        return builder;
    }
}
