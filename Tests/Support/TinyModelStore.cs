using FalHints.Runner.Models;

namespace FalHints.Tests.Support;

/// <summary>A model store with five small demo models (about 256 KB each), shared by a test class.</summary>
public sealed class TinyModelStore : IDisposable
{
    public static readonly string[] ModelIds = ["tiny/alpha", "tiny/beta", "tiny/gamma", "tiny/delta", "tiny/prewarm"];

    private readonly TempDirectory _directory = new();

    public TinyModelStore()
    {
        Store = new ModelStore(_directory.Path);
        DemoModels.Fill(Store, [.. ModelIds.Select(id => new DemoModelSpec(id, 256 << 10))]);
    }

    public ModelStore Store { get; }

    public string Root => Store.Root;

    public void Dispose() => _directory.Dispose();
}
