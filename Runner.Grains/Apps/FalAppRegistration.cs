using Microsoft.Extensions.DependencyInjection;

namespace FalHints.Runner.Apps;

/// <summary>An app type every runner of the silo hosts; each runner creates its own instance.</summary>
public sealed record FalAppRegistration(Type AppType)
{
    /// <summary>Creates an instance, resolving constructor arguments from <paramref name="services"/>.</summary>
    public FalApp Create(IServiceProvider services) => (FalApp)ActivatorUtilities.CreateInstance(services, AppType);
}
