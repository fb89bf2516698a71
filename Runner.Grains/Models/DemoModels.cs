using System.IO.Hashing;
using System.Text;
using FalHints.Client.Contracts;
using FalHints.Runner.Pipelines;

namespace FalHints.Runner.Models;

/// <summary>A demo model to create: its id and about how many bytes of weights.</summary>
public sealed record DemoModelSpec(string Id, long Bytes);

/// <summary>Where one model of a fill stands.</summary>
public enum DemoModelStage
{
    /// <summary>The model is being written.</summary>
    Writing,

    /// <summary>The model has been written.</summary>
    Written,

    /// <summary>The store already had the model; it was left as it is.</summary>
    AlreadyPresent,
}

/// <summary>Progress of filling the store: model <paramref name="Index"/> of <paramref name="Count"/>, and bytes done of the total.</summary>
public sealed record DemoModelProgress(string ModelId, int Index, int Count, DemoModelStage Stage, long BytesDone, long BytesTotal);

/// <summary>
/// Creates demo text-to-image models in the store, deterministically: the same id and size always give
/// the same weights. Each model is written to a staging folder and moved into place, so an interrupted
/// fill never leaves a half-written model behind.
/// </summary>
public static class DemoModels
{
    /// <summary>The models a fresh store gets on first start.</summary>
    public static IReadOnlyList<DemoModelSpec> Defaults { get; } =
    [
        new("demo/ember", 8L << 20),
        new("demo/tide", 16L << 20),
        new("demo/moss", 32L << 20),
    ];

    /// <summary>Writes each model of <paramref name="specs"/> that the store lacks, reporting progress before and after each.</summary>
    public static void Fill(ModelStore store, IReadOnlyList<DemoModelSpec> specs, IProgress<DemoModelProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        foreach (var spec in specs)
        {
            if (!ModelStore.TryValidateId(spec.Id, out var error))
            {
                throw new ModelStoreException(ErrorCodes.InvalidInput, error);
            }
        }

        var total = specs.Sum(s => s.Bytes);
        var done = 0L;
        for (var i = 0; i < specs.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var spec = specs[i];
            var target = Path.Combine(store.Root, spec.Id);
            if (Directory.Exists(target))
            {
                done += spec.Bytes;
                progress?.Report(new DemoModelProgress(spec.Id, i, specs.Count, DemoModelStage.AlreadyPresent, done, total));
                continue;
            }

            progress?.Report(new DemoModelProgress(spec.Id, i, specs.Count, DemoModelStage.Writing, done, total));
            Write(store, spec, target);
            done += spec.Bytes;
            progress?.Report(new DemoModelProgress(spec.Id, i, specs.Count, DemoModelStage.Written, done, total));
        }
    }

    private static void Write(ModelStore store, DemoModelSpec spec, string target)
    {
        var seed = (long)(XxHash64.HashToUInt64(Encoding.UTF8.GetBytes(spec.Id)) & long.MaxValue);
        var staging = Path.Combine(store.Root, $".staging-{Guid.NewGuid():N}");
        try
        {
            TextToImagePipeline.WriteRandom(TextToImageConfig.ForSize(spec.Bytes, seed), staging);
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            Directory.Move(staging, target);
        }
        finally
        {
            if (Directory.Exists(staging))
            {
                Directory.Delete(staging, recursive: true);
            }
        }
    }
}
