using FalHints.Client.Requests;
using FalHints.Host.Hosting;
using FalHints.Runner.Models;
using Microsoft.Extensions.Configuration;
using Orleans.TestingHost;

namespace FalHints.Tests.Support;

/// <summary>How a test cluster differs from the default host: silos, settings, extra apps, store contents.</summary>
public interface IClusterProfile
{
    short Silos => 1;

    IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>();

    void ConfigureSilo(ISiloBuilder silo)
    {
    }

    void ConfigureClient(IClientBuilder client)
    {
    }

    void PrepareStore(ModelStore store)
    {
    }
}

/// <summary>The default host's configuration with 2 CPU runners per silo and fast heartbeats.</summary>
public sealed class DefaultProfile : IClusterProfile;

/// <summary>An in-process Orleans cluster configured like the default host, over a tiny model store.</summary>
public sealed class FalHintsCluster<TProfile> : IAsyncLifetime, IDisposable
    where TProfile : IClusterProfile, new()
{
    private readonly TinyModelStore _models = new();
    private readonly TProfile _profile = new();

    public InProcessTestCluster Cluster { get; private set; } = null!;

    public FalHintsClient Client => new(Cluster.Client);

    public TinyModelStore Models => _models;

    public async Task InitializeAsync()
    {
        _profile.PrepareStore(_models.Store);
        var settings = new Dictionary<string, string?>
        {
            ["FalHints:Runners:CpuRunners"] = "2",
            ["FalHints:Runners:HeartbeatInterval"] = "00:00:01",
            ["FalHints:Router:DiscoveryTimeout"] = "00:00:05",

            // Several silos share this process; tests that need a durable store set their own.
            ["FalHints:Storage:Mode"] = "memory",
        };
        foreach (var (key, value) in _profile.Settings)
        {
            settings[key] = value;
        }

        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var builder = new InProcessTestClusterBuilder(_profile.Silos);
        builder.ConfigureSilo((_, silo) =>
        {
            silo.AddFalHintsDefaults(configuration, _models.Root);
            _profile.ConfigureSilo(silo);
        });
        builder.ConfigureClient(client =>
        {
            client.UseFalHintsDefaults();
            _profile.ConfigureClient(client);
        });
        Cluster = builder.Build();
        await Cluster.DeployAsync();
    }

    public async Task DisposeAsync() => await Cluster.DisposeAsync();

    public void Dispose() => _models.Dispose();
}
