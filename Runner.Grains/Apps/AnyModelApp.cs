using System.Runtime.CompilerServices;
using FalHints.Client.Apps;
using FalHints.Client.Contracts;
using FalHints.Runner.Models;
using FalHints.Runner.Pipelines;

namespace FalHints.Runner.Apps;

/// <summary>
/// Serves any model of the local store by name, keeping loaded models in the runner's pipeline cache; its
/// hints are the names of the loaded models, most recently used first (the routing-hints example app). <c>/</c> returns
/// the image; <c>/stream</c> (fal's <c>fal.stream</c>) sends the image after every denoising step, the last one final.
/// A model that leaves the store leaves the cache too, so it is no longer reported once its files are gone.
/// </summary>
public sealed class AnyModelApp : FalApp<AnyModelInput, AnyModelOutput>
{
    /// <summary>The longest prompt accepted, in characters.</summary>
    public const int MaxPromptLength = 4000;

    private RunnerContext _runner = null!;

    /// <summary>Maps <c>/</c> and the streaming <c>/stream</c>.</summary>
    public AnyModelApp() => MapStreamingEndpoint<AnyModelInput, AnyModelStep>("/stream", StreamAsync);

    /// <inheritdoc />
    public override string AppId => AnyModel.AppId;

    /// <summary>fal's defaults, with the input's <c>model</c> as the hint when the caller sends none, and the prompt's limit checked at submission.</summary>
    public override FalAppSettings Settings { get; } = FalAppSettings.Default with { HintField = "model", InputLimits = [new InputLimit("prompt", MaxPromptLength)] };

    /// <inheritdoc />
    public override Task SetupAsync(RunnerContext runner, CancellationToken cancellationToken)
    {
        _runner = runner;
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public override IReadOnlyList<string> ProvideHints() => StillStored(_runner.Pipelines.Keys);

    /// <inheritdoc />
    public override IReadOnlyList<string> ProvideLoading() => _runner.Pipelines.Loading;

    /// <inheritdoc />
    public override IReadOnlyList<string> ProvideWarm() => StillStored(_runner.Pipelines.Warm);

    /// <inheritdoc />
    public override async Task PrewarmAsync(string hint, CancellationToken cancellationToken)
    {
        using var _ = await AcquireAsync(hint, cancellationToken);
    }

    /// <inheritdoc />
    protected override async Task<AnyModelOutput> RunAsync(AnyModelInput input, CancellationToken cancellationToken)
    {
        CheckPrompt(input);
        using var pipeline = await AcquireAsync(input.Model, cancellationToken);
        var image = await _runner.Executor.RunAsync(() => pipeline.Value.Render(input.Prompt), cancellationToken);
        return new AnyModelOutput(ToFalImage(image));
    }

    private async IAsyncEnumerable<AnyModelStep> StreamAsync(AnyModelInput input, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        CheckPrompt(input);
        using var pipeline = await AcquireAsync(input.Model, cancellationToken);
        var render = await _runner.Executor.RunAsync(() => pipeline.Value.BeginRender(input.Prompt), cancellationToken);
        try
        {
            while (render.Done < render.Steps)
            {
                var image = await _runner.Executor.RunAsync(render.Step, cancellationToken);
                yield return new AnyModelStep(ToFalImage(image), render.Done, render.Steps);
            }
        }
        finally
        {
            await _runner.Executor.RunAsync(render.Dispose, CancellationToken.None);
        }
    }

    private static void CheckPrompt(AnyModelInput input)
    {
        if (input.Prompt.Length > MaxPromptLength)
        {
            throw new FalAppException(ErrorCodes.InvalidInput, $"The prompt is {input.Prompt.Length} characters long; at most {MaxPromptLength} are allowed.");
        }
    }

    private static FalImage ToFalImage(RgbImage image)
    {
        var png = image.EncodePng();
        return new FalImage(DataUrl.Encode("image/png", png), "image/png", "image.png", png.Length, image.Width, image.Height);
    }

    private Task<PipelineLease<TextToImagePipeline>> AcquireAsync(string modelId, CancellationToken cancellationToken)
    {
        StoredModel model;
        try
        {
            model = _runner.Models.Resolve(modelId);
        }
        catch (ModelStoreException ex) when (ex.Code == ErrorCodes.ModelNotFound)
        {
            // Deleted while held: it must not stay cached, reported and served from memory.
            _runner.Pipelines.Forget(modelId);
            throw;
        }

        return _runner.Pipelines.AcquireAsync(model.Id, model.WeightBytes,
            () => _runner.Executor.RunAsync(() => TextToImagePipeline.Load(model, _runner.TorchDevice, _runner.Loader)), cancellationToken);
    }

    /// <summary>The cached models whose weights are still in the store (one file check each); the others are forgotten.</summary>
    private List<string> StillStored(IReadOnlyList<string> keys)
    {
        var stored = new List<string>(keys.Count);
        foreach (var key in keys)
        {
            if (File.Exists(Path.Combine(_runner.Models.Root, key, ModelStore.WeightsFileName)))
            {
                stored.Add(key);
            }
            else
            {
                _runner.Pipelines.Forget(key);
            }
        }

        return stored;
    }
}
