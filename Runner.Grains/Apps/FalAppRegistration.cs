using FalHints.Client.Contracts;
using Microsoft.Extensions.DependencyInjection;

namespace FalHints.Runner.Apps;

/// <summary>An app type every runner of the silo hosts; each runner creates its own instance.</summary>
public sealed class FalAppRegistration(Type appType)
{
    private AppDeclaration? _declaration;

    /// <summary>The app's type, a <see cref="FalApp"/>.</summary>
    public Type AppType { get; } = appType;

    /// <summary>Creates an instance, resolving constructor arguments from <paramref name="services"/>.</summary>
    public FalApp Create(IServiceProvider services) => (FalApp)ActivatorUtilities.CreateInstance(services, AppType);

    /// <summary>The app's id (read from an instance that is never set up).</summary>
    public string AppId(IServiceProvider services) => Declaration(services).AppId;

    /// <summary>The app's id and what it declares to routers (read from an instance that is never set up).</summary>
    public AppDeclaration Declaration(IServiceProvider services)
    {
        if (_declaration is null)
        {
            var app = Create(services);
            _declaration = new AppDeclaration(app.AppId, app.Settings.HintField, app.Settings.InputLimits);
        }

        return _declaration;
    }
}
