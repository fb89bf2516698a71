using FalHints.Client.Apps;
using FalHints.Client.Contracts;
using FalHints.Runner.Pipelines;

namespace FalHints.Runner.Apps;

/// <summary>
/// Serves any model of the local store by name, keeping loaded models in the runner's pipeline cache; its
/// hints are the names of the loaded models, most recently used first (the routing-hints example app).
/// </summary>
public sealed class AnyModelApp : FalApp<AnyModelInput, AnyModelOutput>
{
    /// <summary>The longest prompt accepted, in characters.</summary>
    public const int MaxPromptLength = 4000;

    private RunnerContext _runner = null!;

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
    public override IReadOnlyList<string> ProvideHints() => _runner.Pipelines.Keys;

    /// <inheritdoc />
    public override IReadOnlyList<string> ProvideLoading() => _runner.Pipelines.Loading;

    /// <inheritdoc />
    public override async Task PrewarmAsync(string hint, CancellationToken cancellationToken)
    {
        using var _ = await AcquireAsync(hint, cancellationToken);
    }

    /// <inheritdoc />
    protected override async Task<AnyModelOutput> RunAsync(AnyModelInput input, CancellationToken cancellationToken)
    {
        if (input.Prompt.Length > MaxPromptLength)
        {
            throw new FalAppException(ErrorCodes.InvalidInput, $"The prompt is {input.Prompt.Length} characters long; at most {MaxPromptLength} are allowed.");
        }

        using var pipeline = await AcquireAsync(input.Model, cancellationToken);
        var image = await _runner.Executor.RunAsync(() => pipeline.Value.Render(input.Prompt), cancellationToken);
        var png = image.EncodePng();
        var url = "data:image/png;base64," + Convert.ToBase64String(png);
        return new AnyModelOutput(new FalImage(url, "image/png", "image.png", png.Length, image.Width, image.Height));
    }

    private Task<PipelineLease<TextToImagePipeline>> AcquireAsync(string modelId, CancellationToken cancellationToken)
    {
        var model = _runner.Models.Resolve(modelId);
        return _runner.Pipelines.AcquireAsync(model.Id, model.WeightBytes,
            () => _runner.Executor.RunAsync(() => TextToImagePipeline.Load(model, _runner.TorchDevice)), cancellationToken);
    }
}
