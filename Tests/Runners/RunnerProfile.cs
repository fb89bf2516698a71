using System.Buffers.Binary;
using FalHints.Client.Contracts;
using FalHints.Runner.Hosting;
using FalHints.Runner.Models;
using FalHints.Tests.Support;

namespace FalHints.Tests.Runners;

/// <summary>Two silos with two CPU runners each, the test apps, client-side hint streams and one corrupt model.</summary>
public sealed class RunnerProfile : IClusterProfile
{
    public const string CorruptModel = "tiny/corrupt";

    /// <summary>A model whose safetensors header claims to be 2,000,000,000 bytes long.</summary>
    public const string HugeHeaderModel = "tiny/huge-header";

    /// <summary>A model that a test deletes from the store while a runner holds it.</summary>
    public const string DoomedModel = "tiny/doomed";

    /// <summary>Another, deleted while no request asks for it.</summary>
    public const string VanishingModel = "tiny/vanishing";

    public short Silos => 2;

    public void ConfigureSilo(ISiloBuilder silo) =>
        silo.AddFalApp<GatedLoadApp>().AddFalApp<NoisyHintsApp>().AddFalApp<FaultyApp>();

    public void ConfigureClient(IClientBuilder client) => client.AddMemoryStreams(HintStream.ProviderName);

    public void PrepareStore(ModelStore store)
    {
        DemoModels.Fill(store, [new DemoModelSpec(CorruptModel, 256 << 10), new DemoModelSpec(DoomedModel, 256 << 10), new DemoModelSpec(VanishingModel, 256 << 10)]);
        var weights = Path.Combine(store.Root, CorruptModel, ModelStore.WeightsFileName);
        File.WriteAllBytes(weights, File.ReadAllBytes(weights)[..4096]);
        DemoModels.Fill(store, [new DemoModelSpec(HugeHeaderModel, 256 << 10)]);
        var huge = File.ReadAllBytes(Path.Combine(store.Root, HugeHeaderModel, ModelStore.WeightsFileName));
        BinaryPrimitives.WriteUInt64LittleEndian(huge, 2_000_000_000);
        File.WriteAllBytes(Path.Combine(store.Root, HugeHeaderModel, ModelStore.WeightsFileName), huge);
    }
}
