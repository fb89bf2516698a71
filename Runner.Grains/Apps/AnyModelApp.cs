using FalHints.Client.Apps;
using FalHints.Client.Contracts;
using FalHints.Runner.Pipelines;

namespace FalHints.Runner.Apps;

/// <summary>
/// Serves any model of the local store by name, keeping every model it has loaded; its hints are the
/// names of the loaded models (the routing-hints example app).
/// </summary>
public sealed class AnyModelApp : FalApp<AnyModelInput, AnyModelOutput>
{
    /// <summary>The longest prompt accepted, in characters.</summary>
    public const int MaxPromptLength = 4000;

    private readonly Dictionary<string, TextToImagePipeline> _models = new(StringComparer.Ordinal);
    private RunnerContext _runner = null!;

    /// <inheritdoc />
    public override string AppId => AnyModel.AppId;

    /// <inheritdoc />
    public override Task SetupAsync(RunnerContext runner, CancellationToken cancellationToken)
    {
        _runner = runner;
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public override IReadOnlyList<string> ProvideHints() => [.. _models.Keys];

    /// <inheritdoc />
    public override async Task TeardownAsync(CancellationToken cancellationToken)
    {
        var models = _models.Values.ToList();
        _models.Clear();
        await _runner.Executor.RunAsync(() => models.ForEach(model => model.Dispose()), cancellationToken);
    }

    /// <inheritdoc />
    protected override async Task<AnyModelOutput> RunAsync(AnyModelInput input, CancellationToken cancellationToken)
    {
        if (input.Prompt.Length > MaxPromptLength)
        {
            throw new FalAppException(ErrorCodes.InvalidInput, $"The prompt is {input.Prompt.Length} characters long; at most {MaxPromptLength} are allowed.");
        }

        var pipeline = await LoadModelAsync(input.Model, cancellationToken);
        var image = await _runner.Executor.RunAsync(() => pipeline.Render(input.Prompt), cancellationToken);
        var png = image.EncodePng();
        var url = "data:image/png;base64," + Convert.ToBase64String(png);
        return new AnyModelOutput(new FalImage(url, "image/png", "image.png", png.Length, image.Width, image.Height));
    }

    private async Task<TextToImagePipeline> LoadModelAsync(string name, CancellationToken cancellationToken)
    {
        if (_models.TryGetValue(name, out var cached))
        {
            return cached;
        }

        var model = _runner.Models.Resolve(name);
        var pipeline = await _runner.Executor.RunAsync(() => TextToImagePipeline.Load(model, _runner.TorchDevice), cancellationToken);
        _models[name] = pipeline;
        return pipeline;
    }
}
