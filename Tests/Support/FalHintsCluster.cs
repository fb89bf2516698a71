using FalHints.Client.Requests;
using FalHints.Host.Hosting;
using Microsoft.Extensions.Configuration;
using Orleans.TestingHost;

namespace FalHints.Tests.Support;

/// <summary>An in-process Orleans cluster configured like the default host, over a tiny model store.</summary>
public sealed class FalHintsCluster : IAsyncLifetime, IDisposable
{
    private readonly TinyModelStore _models = new();

    private readonly Dictionary<string, string?> _settings = new()
    {
        ["FalHints:Runners:CpuRunners"] = "2",
        ["FalHints:Runners:HeartbeatInterval"] = "00:00:01",
        ["FalHints:Router:DiscoveryTimeout"] = "00:00:05",
    };

    public InProcessTestCluster Cluster { get; private set; } = null!;

    public FalHintsClient Client => new(Cluster.Client);

    public TinyModelStore Models => _models;

    public async Task InitializeAsync()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(_settings).Build();
        var builder = new InProcessTestClusterBuilder(1);
        builder.ConfigureSilo((_, silo) => silo.AddFalHintsDefaults(configuration, _models.Root));
        builder.ConfigureClient(client => client.UseFalHintsDefaults());
        Cluster = builder.Build();
        await Cluster.DeployAsync();
    }

    public async Task DisposeAsync() => await Cluster.DisposeAsync();

    public void Dispose() => _models.Dispose();
}
