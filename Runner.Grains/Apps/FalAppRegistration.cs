using Microsoft.Extensions.DependencyInjection;

namespace FalHints.Runner.Apps;

/// <summary>An app type every runner of the silo hosts; each runner creates its own instance.</summary>
public sealed class FalAppRegistration(Type appType)
{
    private string? _appId;

    /// <summary>The app's type, a <see cref="FalApp"/>.</summary>
    public Type AppType { get; } = appType;

    /// <summary>Creates an instance, resolving constructor arguments from <paramref name="services"/>.</summary>
    public FalApp Create(IServiceProvider services) => (FalApp)ActivatorUtilities.CreateInstance(services, AppType);

    /// <summary>The app's id (read from an instance that is never set up).</summary>
    public string AppId(IServiceProvider services) => _appId ??= Create(services).AppId;
}
