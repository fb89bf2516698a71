using FalHints.Client.Contracts;
using FalHints.Router.Hosting;
using FalHints.Router.Requests;
using FalHints.Router.Routing;
using FalHints.Runner.Apps;
using FalHints.Runner.Hosting;
using FalHints.Runner.Runners;
using Microsoft.Extensions.Configuration;

namespace FalHints.Host.Hosting;

/// <summary>The silo setup every FalHints node shares, whatever its clustering.</summary>
public static class FalHintsSilo
{
    /// <summary>
    /// Memory streams for hints, memory grain storage for stream subscriptions, request state as <c>FalHints:Storage</c> says, routers, and runners serving the default
    /// <c>falhints/any-model</c> app from <paramref name="modelStoreRoot"/>. Settings come from
    /// <paramref name="configuration"/> (sections <c>FalHints:Runners</c>, <c>FalHints:Router</c> and, for where
    /// request state is stored, <c>FalHints:Storage</c> and <c>FalHints:Cluster</c>).
    /// </summary>
    public static ISiloBuilder AddFalHintsDefaults(this ISiloBuilder silo, IConfiguration configuration, string modelStoreRoot)
    {
        // The strongly consistent directory. With Orleans' default one, a silo that leaves takes its share of the
        // directory with it and every grain registered there is deactivated, wherever it runs: runners on healthy nodes
        // would unload their models and drop the requests they were running whenever another node died or drained.
#pragma warning disable ORLEANSEXP003 // Opt-in since Orleans 9; its API may still change.
        silo.AddDistributedGrainDirectory();
#pragma warning restore ORLEANSEXP003
        silo.AddMemoryGrainStorage("PubSubStore");
        silo.AddFalHintsRequestStorage(configuration, RequestStorage.Name);
        silo.AddMemoryStreams(HintStream.ProviderName);
        silo.AddFalHintsRouter(configuration.GetSection(RouterOptions.SectionName));
        silo.AddFalHintsRunners(modelStoreRoot, configuration.GetSection(RunnerOptions.SectionName));
        silo.AddFalApp<AnyModelApp>();
        return silo;
    }

    /// <summary>The default model store: <c>models</c> in the <see cref="DefaultDataDirectory"/>.</summary>
    public static string DefaultModelStoreRoot() => Path.Combine(DefaultDataDirectory(), "models");

    /// <summary>Where a node keeps its files by default: <c>$XDG_DATA_HOME/falhints</c>, else <c>~/.local/share/falhints</c>.</summary>
    public static string DefaultDataDirectory()
    {
        var dataHome = Environment.GetEnvironmentVariable("XDG_DATA_HOME");
        if (string.IsNullOrEmpty(dataHome))
        {
            dataHome = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "share");
        }

        return Path.Combine(dataHome, "falhints");
    }
}
