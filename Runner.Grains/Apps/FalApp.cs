using System.Collections.Immutable;
using System.Text.Json;
using FalHints.Client.Contracts;
using FalHints.Client.Requests;

namespace FalHints.Runner.Apps;

/// <summary>
/// An app served by runners, the .NET counterpart of fal's <c>App</c>. One instance lives on each runner:
/// <see cref="SetupAsync"/> runs once when the runner starts, <see cref="ProvideHints"/> after every response.
/// Endpoints take and return JSON records in fal's snake_case; map them with <see cref="MapEndpoint{TInput, TOutput}"/>,
/// or derive from <see cref="FalApp{TInput, TOutput}"/> for a single endpoint at <c>/</c>.
/// </summary>
public abstract class FalApp
{
    private readonly Dictionary<string, Endpoint> _endpoints = new(StringComparer.Ordinal);

    /// <summary>The app id, <c>owner/name</c>.</summary>
    public abstract string AppId { get; }

    /// <summary>Per-app settings; the defaults are fal's.</summary>
    public virtual FalAppSettings Settings => FalAppSettings.Default;

    /// <summary>The endpoint paths the app serves.</summary>
    public IReadOnlyCollection<string> Endpoints => _endpoints.Keys;

    /// <summary>Each endpoint's path, input and output types, and whether it streams partial outputs.</summary>
    public IReadOnlyList<FalEndpoint> DescribeEndpoints() =>
        [.. _endpoints.OrderBy(e => e.Key, StringComparer.Ordinal).Select(e => e.Value.Description)];

    /// <summary>Runs once per runner before the first request.</summary>
    public virtual Task SetupAsync(RunnerContext runner, CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Runs once when the runner stops.</summary>
    public virtual Task TeardownAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>What this runner is specialised for now, most specific first; requests whose hint is listed are preferred here.</summary>
    public virtual IReadOnlyList<string> ProvideHints() => [];

    /// <summary>What this runner is loading now (about to be specialised for); shown to routers beside the hints.</summary>
    public virtual IReadOnlyList<string> ProvideLoading() => [];

    /// <summary>
    /// What this runner keeps in host memory, ready to be brought back to the device for the cost of a copy (its host
    /// tier); shown to routers beside the hints, which stay what is on the device.
    /// </summary>
    public virtual IReadOnlyList<string> ProvideWarm() => [];

    /// <summary>
    /// Loads what <paramref name="hint"/> names ahead of traffic, when an operator asks the router to prewarm runners.
    /// The default refuses: the app does not support prewarming.
    /// </summary>
    public virtual Task PrewarmAsync(string hint, CancellationToken cancellationToken) =>
        throw new FalAppException(ErrorCodes.InvalidInput, $"App '{AppId}' does not support prewarming.");

    /// <summary>Handles one request given as JSON and returns the output as JSON.</summary>
    /// <exception cref="FalAppException">The request failed for a reason the caller should see.</exception>
    public Task<string> HandleJsonAsync(string path, string inputJson, CancellationToken cancellationToken) =>
        HandleJsonAsync(path, inputJson, null, cancellationToken);

    /// <summary>
    /// Handles one request given as JSON and returns the output as JSON; a streaming endpoint hands each partial output
    /// but the last to <paramref name="partial"/> (awaited, in order) and returns the last as the output.
    /// </summary>
    /// <exception cref="FalAppException">The request failed for a reason the caller should see.</exception>
    public Task<string> HandleJsonAsync(string path, string inputJson, Func<string, Task>? partial, CancellationToken cancellationToken) =>
        _endpoints.TryGetValue(path, out var endpoint)
            ? endpoint.Handle(inputJson, partial, cancellationToken)
            : throw new FalAppException(ErrorCodes.EndpointNotFound,
                $"App '{AppId}' has no endpoint '{path}'; it serves {string.Join(", ", _endpoints.Keys.Select(k => $"'{k}'"))}.");

    /// <summary>Serves <paramref name="handler"/> at <paramref name="path"/> (e.g. <c>/</c> or <c>/upscale</c>).</summary>
    protected void MapEndpoint<TInput, TOutput>(string path, Func<TInput, CancellationToken, Task<TOutput>> handler)
        where TInput : class
    {
        Add<TInput, TOutput>(path, streaming: false, async (input, _, cancellationToken) =>
            Serialize(path, await handler(input, cancellationToken)));
    }

    /// <summary>
    /// Serves a streaming endpoint at <paramref name="path"/> (fal's clients call <c>/stream</c> with <c>fal.stream</c>):
    /// every output the handler yields is sent to streaming callers as it comes (as a server-sent event), and the last one
    /// is the request's output, what queue and synchronous callers get.
    /// </summary>
    protected void MapStreamingEndpoint<TInput, TOutput>(string path, Func<TInput, CancellationToken, IAsyncEnumerable<TOutput>> handler)
        where TInput : class
    {
        Add<TInput, TOutput>(path, streaming: true, async (input, partial, cancellationToken) =>
        {
            // Each output is sent once the next one exists, so the last is known: it is the request's output only.
            string? previous = null;
            await foreach (var output in handler(input, cancellationToken).WithCancellation(cancellationToken))
            {
                if (previous is not null && partial is not null)
                {
                    await partial(previous);
                }

                previous = Serialize(path, output);
            }

            return previous ?? throw new FalAppException(ErrorCodes.AppError, $"App '{AppId}' endpoint '{path}' yielded no output.");
        });
    }

    private void Add<TInput, TOutput>(string path, bool streaming, Func<TInput, Func<string, Task>?, CancellationToken, Task<string>> run)
        where TInput : class
    {
        if (!path.StartsWith('/'))
        {
            throw new ArgumentException($"Endpoint path '{path}' must start with '/'.", nameof(path));
        }

        _endpoints.Add(path, new Endpoint(new FalEndpoint(path, typeof(TInput), typeof(TOutput), streaming), async (json, partial, cancellationToken) =>
        {
            TInput? input;
            try
            {
                input = JsonSerializer.Deserialize<TInput>(json, FalJson.Options);
            }
            catch (JsonException ex)
            {
                throw new FalAppException(ErrorCodes.InvalidInput, $"The input is not valid for app '{AppId}' endpoint '{path}': {ex.Message}");
            }

            if (input is null)
            {
                throw new FalAppException(ErrorCodes.InvalidInput, $"The input for app '{AppId}' endpoint '{path}' is null.");
            }

            return await run(input, partial, cancellationToken);
        }));
    }

    private string Serialize<TOutput>(string path, TOutput output)
    {
        try
        {
            return output is null
                ? throw new FalAppException(ErrorCodes.AppError, $"App '{AppId}' endpoint '{path}' returned no output.")
                : JsonSerializer.Serialize(output, FalJson.Options);
        }
        catch (Exception ex) when (ex is JsonException or NotSupportedException or InvalidOperationException or ArgumentException)
        {
            throw new FalAppException(ErrorCodes.AppError, $"App '{AppId}' endpoint '{path}' returned output that cannot be serialized: {ex.Message}");
        }
    }

    private sealed record Endpoint(FalEndpoint Description, Func<string, Func<string, Task>?, CancellationToken, Task<string>> Handle);
}

/// <summary>One endpoint of an app.</summary>
/// <param name="Path">Its path, e.g. <c>/</c> or <c>/stream</c>.</param>
/// <param name="InputType">The input record (JSON in fal's snake_case).</param>
/// <param name="OutputType">The output record; for a streaming endpoint, the type of each partial output.</param>
/// <param name="Streaming">True when it yields partial outputs as it works.</param>
public sealed record FalEndpoint(string Path, Type InputType, Type OutputType, bool Streaming);

/// <summary>An app with one typed endpoint at <c>/</c>.</summary>
public abstract class FalApp<TInput, TOutput> : FalApp
    where TInput : class
{
    /// <summary>Maps <see cref="RunAsync"/> at <c>/</c>.</summary>
    protected FalApp() => MapEndpoint<TInput, TOutput>("/", RunAsync);

    /// <summary>The endpoint.</summary>
    protected abstract Task<TOutput> RunAsync(TInput input, CancellationToken cancellationToken);
}

/// <summary>Per-app settings.</summary>
/// <param name="MaxMultiplexing">Requests one runner serves at once (fal's <c>max_multiplexing</c>).</param>
/// <param name="RequestTimeout">How long one request may run on a runner.</param>
/// <param name="HintField">A top-level input field whose string value routers use as the hint when the caller sends
/// none (so callers that omit the hint still get affinity); null: none.</param>
/// <param name="InputLimits">Limits on input fields that routers check at submission, so a request the app would refuse
/// is refused at once (422) instead of after it waited and reached a runner. The app still checks its input itself.</param>
public sealed record FalAppSettings(int MaxMultiplexing, TimeSpan RequestTimeout, string? HintField = null, ImmutableArray<InputLimit> InputLimits = default)
{
    /// <summary>One request at a time, five minutes each.</summary>
    public static FalAppSettings Default { get; } = new(1, TimeSpan.FromMinutes(5));
}

/// <summary>A request failure the app reports to the caller, with a request error code.</summary>
public sealed class FalAppException(string code, string message) : Exception(message)
{
    /// <summary>The error code, one of <see cref="ErrorCodes"/> or the app's own.</summary>
    public string Code { get; } = code;
}
