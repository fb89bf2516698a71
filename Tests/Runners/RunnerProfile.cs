using FalHints.Client.Contracts;
using FalHints.Runner.Hosting;
using FalHints.Runner.Models;
using FalHints.Tests.Support;

namespace FalHints.Tests.Runners;

/// <summary>Two silos with two CPU runners each, the test apps, client-side hint streams and one corrupt model.</summary>
public sealed class RunnerProfile : IClusterProfile
{
    public const string CorruptModel = "tiny/corrupt";

    public short Silos => 2;

    public void ConfigureSilo(ISiloBuilder silo) =>
        silo.AddFalApp<GatedLoadApp>().AddFalApp<NoisyHintsApp>().AddFalApp<FaultyApp>();

    public void ConfigureClient(IClientBuilder client) => client.AddMemoryStreams(HintStream.ProviderName);

    public void PrepareStore(ModelStore store)
    {
        DemoModels.Fill(store, [new DemoModelSpec(CorruptModel, 256 << 10)]);
        var weights = Path.Combine(store.Root, CorruptModel, ModelStore.WeightsFileName);
        File.WriteAllBytes(weights, File.ReadAllBytes(weights)[..4096]);
    }
}
