using System.Collections.Concurrent;
using FalHints.Runner.Apps;
using FalHints.Runner.Pipelines;

namespace FalHints.Tests.Runners;

/// <param name="Key">The pipeline to load (its load waits for the gate of that name).</param>
/// <param name="Hold">When set, the request then waits for the gate of that name before it answers.</param>
public sealed record KeyInput(string Key, string? Hold = null);

public sealed record KeyOutput(string Key, string Runner);

/// <summary>Loads a pipeline per key, waiting for the test to open that key's gate first.</summary>
public sealed class GatedLoadApp : FalApp<KeyInput, KeyOutput>
{
    public const string Id = "test/gated";

    private static readonly ConcurrentDictionary<string, TaskCompletionSource> Gates = new();
    private RunnerContext _runner = null!;

    public override string AppId => Id;

    public static TaskCompletionSource Gate(string key) =>
        Gates.GetOrAdd(key, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));

    public override Task SetupAsync(RunnerContext runner, CancellationToken cancellationToken)
    {
        _runner = runner;
        return Task.CompletedTask;
    }

    public override IReadOnlyList<string> ProvideHints() => _runner.Pipelines.Keys;

    public override IReadOnlyList<string> ProvideLoading() => _runner.Pipelines.Loading;

    public override async Task PrewarmAsync(string hint, CancellationToken cancellationToken)
    {
        using var lease = await AcquireAsync(hint, cancellationToken);
    }

    protected override async Task<KeyOutput> RunAsync(KeyInput input, CancellationToken cancellationToken)
    {
        using var lease = await AcquireAsync(input.Key, cancellationToken);
        if (input.Hold is { } hold)
        {
            await Gate(hold).Task.WaitAsync(cancellationToken);
        }

        return new KeyOutput(input.Key, _runner.RunnerId);
    }

    private Task<PipelineLease<MemoryStream>> AcquireAsync(string key, CancellationToken cancellationToken) =>
        _runner.Pipelines.AcquireAsync(key, 1, async () =>
        {
            await Gate(key).Task;
            return new MemoryStream();
        }, cancellationToken);
}

/// <summary>Reports more hints, and longer ones, than a runner accepts.</summary>
public sealed class NoisyHintsApp : FalApp<KeyInput, KeyOutput>
{
    public const string Id = "test/noisy";

    public override string AppId => Id;

    public override IReadOnlyList<string> ProvideHints() =>
        [new string('x', FalHints.Client.Contracts.Hints.MaxLength + 1), .. Enumerable.Range(0, 100).Select(i => $"h{i:000}")];

    protected override Task<KeyOutput> RunAsync(KeyInput input, CancellationToken cancellationToken) =>
        Task.FromResult(new KeyOutput(input.Key, "noisy"));
}

public sealed record FaultInput(string Mode, string? Key = null, long Bytes = 0);

public sealed record FaultOutput(string Mode, double Value);

/// <summary>Fails in the ways apps do: throws, hangs past its timeout, returns output that cannot be serialized, leaks a pipeline lease.</summary>
public sealed class FaultyApp : FalApp<FaultInput, FaultOutput>
{
    public const string Id = "test/faulty";

    private RunnerContext _runner = null!;

    public override string AppId => Id;

    public override Task SetupAsync(RunnerContext runner, CancellationToken cancellationToken)
    {
        _runner = runner;
        return Task.CompletedTask;
    }

    public override IReadOnlyList<string> ProvideHints() => _runner.Pipelines.Keys;

    public override FalAppSettings Settings { get; } = FalAppSettings.Default with { RequestTimeout = TimeSpan.FromSeconds(1) };

    protected override async Task<FaultOutput> RunAsync(FaultInput input, CancellationToken cancellationToken)
    {
        switch (input.Mode)
        {
            case "throw":
                throw new InvalidOperationException("the app broke");
            case "hang":
                await Task.Delay(Timeout.Infinite, cancellationToken);
                break;
            case "bad-output":
                return new FaultOutput(input.Mode, double.NaN);
            case "leak":
                // Takes a lease on a pipeline and never gives it back.
                _ = await _runner.Pipelines.AcquireAsync(input.Key!, input.Bytes, () => Task.FromResult(new MemoryStream()), cancellationToken);
                break;
        }

        return new FaultOutput(input.Mode, 1);
    }
}

public sealed record FileInput(string FileUrl);

public sealed record FileOutput(string ContentType, long Size, string Sha256);

/// <summary>Reads the file its input names (as the gateway passes stored files: a data: URL) and describes it.</summary>
public sealed class FileEchoApp : FalApp<FileInput, FileOutput>
{
    public const string Id = "test/file-echo";

    public override string AppId => Id;

    protected override Task<FileOutput> RunAsync(FileInput input, CancellationToken cancellationToken)
    {
        if (!FalHints.Client.Apps.DataUrl.IsDataUrl(input.FileUrl))
        {
            throw new FalAppException(FalHints.Client.Contracts.ErrorCodes.InvalidInput, $"file_url is not a file of this cluster: {input.FileUrl}");
        }

        var (contentType, bytes) = FalHints.Client.Apps.DataUrl.Decode(input.FileUrl);
        return Task.FromResult(new FileOutput(contentType, bytes.Length, Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes))));
    }
}

/// <summary>Loads a pipeline per key at once (a request with a hold waits for that gate of <see cref="GatedLoadApp"/>) and refuses every prewarm, counting the refusals.</summary>
public sealed class NoPrewarmApp : FalApp<KeyInput, KeyOutput>
{
    public const string Id = "test/no-prewarm";

    private static int _refused;
    private RunnerContext _runner = null!;

    public override string AppId => Id;

    /// <summary>Prewarms refused so far, by every runner.</summary>
    public static int Refused => Volatile.Read(ref _refused);

    public override Task SetupAsync(RunnerContext runner, CancellationToken cancellationToken)
    {
        _runner = runner;
        return Task.CompletedTask;
    }

    public override IReadOnlyList<string> ProvideHints() => _runner.Pipelines.Keys;

    public override Task PrewarmAsync(string hint, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _refused);
        return base.PrewarmAsync(hint, cancellationToken);
    }

    protected override async Task<KeyOutput> RunAsync(KeyInput input, CancellationToken cancellationToken)
    {
        using var lease = await _runner.Pipelines.AcquireAsync(input.Key, 1, () => Task.FromResult(new MemoryStream()), cancellationToken);
        if (input.Hold is { } hold)
        {
            await GatedLoadApp.Gate(hold).Task.WaitAsync(cancellationToken);
        }

        return new KeyOutput(input.Key, _runner.RunnerId);
    }
}

/// <summary>
/// Declares <c>key</c> as its hint field: loads a pipeline per key at once, and a request with a hold waits for that
/// gate of <see cref="GatedLoadApp"/>.
/// </summary>
public sealed class HintFieldApp : FalApp<KeyInput, KeyOutput>
{
    public const string Id = "test/hint-field";

    private RunnerContext _runner = null!;

    public override string AppId => Id;

    public override FalAppSettings Settings { get; } = FalAppSettings.Default with { HintField = "key" };

    public override Task SetupAsync(RunnerContext runner, CancellationToken cancellationToken)
    {
        _runner = runner;
        return Task.CompletedTask;
    }

    public override IReadOnlyList<string> ProvideHints() => _runner.Pipelines.Keys;

    protected override async Task<KeyOutput> RunAsync(KeyInput input, CancellationToken cancellationToken)
    {
        using var lease = await _runner.Pipelines.AcquireAsync(input.Key, 1, () => Task.FromResult(new MemoryStream()), cancellationToken);
        if (input.Hold is { } hold)
        {
            await GatedLoadApp.Gate(hold).Task.WaitAsync(cancellationToken);
        }

        return new KeyOutput(input.Key, _runner.RunnerId);
    }
}
