using FalHints.Client.Contracts;
using FalHints.Host.Commands;
using FalHints.Host.Gateway;
using FalHints.Runner.Models;
using FalHints.Runner.Runners;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Metrics;
using Orleans.Dashboard;

namespace FalHints.Host.Hosting;

/// <summary>A FalHints node: a silo with its runners and routers, and the HTTP gateway, in one web host.</summary>
public static class FalHintsWebHost
{
    /// <summary>
    /// Builds (does not start) a node from appsettings.json, environment variables and <paramref name="overrides"/>;
    /// fills an empty model store with demo models first unless <c>FalHints:ModelStore:FillOnStart</c> is false.
    /// <paramref name="configureSilo"/> adds to the silo (more apps, for example).
    /// </summary>
    public static WebApplication Build(IReadOnlyDictionary<string, string?> overrides, CancellationToken cancellationToken, Action<ISiloBuilder>? configureSilo = null)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
        HostConfiguration.Apply(builder.Configuration, overrides);

        // A failed start is reported once, by whoever started the node (the command line: in one line).
        builder.Logging.AddFilter("Microsoft.Extensions.Hosting.Internal.Host", LogLevel.None);
        var configuration = builder.Configuration;
        var storeRoot = HostConfiguration.ModelStoreRoot(configuration);
        var store = new ModelStore(storeRoot);
        if (configuration.GetValue("FalHints:ModelStore:FillOnStart", true) && store.List().Count == 0)
        {
            ModelStoreFiller.Fill(store, DemoModels.Defaults, cancellationToken);
        }

        var name = SiloSettings.From(configuration).EffectiveName;

        // A stopping silo drains its runners first (see RunnerOptions.DrainTimeout); give it the time.
        var drain = (configuration.GetSection(RunnerOptions.SectionName).Get<RunnerOptions>() ?? new RunnerOptions()).DrainTimeout;
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = drain + TimeSpan.FromSeconds(30));
        builder.UseOrleans(silo =>
        {
            silo.UseFalHintsClustering(configuration, name);
            silo.AddFalHintsDefaults(configuration, storeRoot);
            silo.AddFalHintsNodeHealth(configuration);
            silo.AddDashboard();
            configureSilo?.Invoke(silo);
        });
        builder.AddFalHintsGateway();
        builder.Services.AddOpenTelemetry().WithMetrics(metrics => metrics
            .AddMeter(FalHintsMeter.Name, "Microsoft.Orleans")
            .AddPrometheusExporter());
        var host = builder.Build();
        host.UseFalHintsGateway();
        host.MapOrleansDashboard("/dashboard");
        host.MapRunnersView();
        host.MapPrometheusScrapingEndpoint("/metrics");
        return host;
    }
}
