using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace FalHints.Client.Requests;

/// <summary>Registers <see cref="FalHintsClient"/> for hosted apps.</summary>
public static class FalHintsClientServiceCollectionExtensions
{
    /// <summary>
    /// Adds a singleton <see cref="FalHintsClient"/> over the Orleans client (or, in a silo, the grain factory) that
    /// the host registers; configure that client with <c>UseOrleansClient(c => c.UseFalHintsDefaults())</c>.
    /// </summary>
    public static IServiceCollection AddFalHintsClient(this IServiceCollection services)
    {
        services.TryAddSingleton(sp => new FalHintsClient(sp.GetRequiredService<IGrainFactory>()));
        return services;
    }
}
