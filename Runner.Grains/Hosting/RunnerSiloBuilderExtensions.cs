using FalHints.Client.Contracts;
using FalHints.Runner.Apps;
using FalHints.Runner.Devices;
using FalHints.Runner.Metrics;
using FalHints.Runner.Models;
using FalHints.Runner.Placement;
using FalHints.Runner.Runners;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace FalHints.Runner.Hosting;

/// <summary>Registers runners on a silo.</summary>
public static class RunnerSiloBuilderExtensions
{
    /// <summary>
    /// Hosts runners on this silo (devices per <see cref="RunnerOptions"/>), serving the apps added with
    /// <see cref="AddFalApp{TApp}"/> from the model store at <paramref name="modelStoreRoot"/>. Every silo of a
    /// cluster must call this (with zero runners if it hosts none), since it registers the runners' placement.
    /// </summary>
    public static ISiloBuilder AddFalHintsRunners(this ISiloBuilder builder, string modelStoreRoot, Action<RunnerOptions>? configure = null) =>
        builder.AddFalHintsRunners(modelStoreRoot, options => options.Configure(configure ?? (_ => { })));

    /// <summary>Hosts runners on this silo with <see cref="RunnerOptions"/> bound from <paramref name="section"/>; see the other overload.</summary>
    public static ISiloBuilder AddFalHintsRunners(this ISiloBuilder builder, string modelStoreRoot, IConfiguration section) =>
        builder.AddFalHintsRunners(modelStoreRoot, options => options.Bind(section));

    private static ISiloBuilder AddFalHintsRunners(this ISiloBuilder builder, string modelStoreRoot, Action<OptionsBuilder<RunnerOptions>> bind)
    {
        builder.AddPlacementDirector<SiloPinnedPlacement, SiloPinnedPlacementDirector>();
        var services = builder.Services;
        var runnerOptions = services.AddOptions<RunnerOptions>();
        bind(runnerOptions);
        runnerOptions.ValidateOnStart();
        services.AddSingleton<IValidateOptions<RunnerOptions>, RunnerOptionsValidator>();
        services.AddSingleton(new ModelStore(modelStoreRoot));
        services.AddSingleton<DeviceExecutors>();
        services.TryAddSingleton(typeof(GrainReferences<>));
        services.TryAddSingleton(TimeProvider.System);
        services.AddMetrics();
        services.TryAddSingleton<RunnerMetrics>();
        services.AddSingleton<RunnerStarter>();
        services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>>(sp => sp.GetRequiredService<RunnerStarter>());
        services.AddHostedService(sp => sp.GetRequiredService<RunnerStarter>());
        return builder;
    }

    /// <summary>Adds an app that every runner of this silo hosts.</summary>
    public static ISiloBuilder AddFalApp<TApp>(this ISiloBuilder builder)
        where TApp : FalApp
    {
        builder.Services.AddSingleton(new FalAppRegistration(typeof(TApp)));
        return builder;
    }
}
