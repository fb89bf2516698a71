using System.Text.Json;
using FalHints.Client.Contracts;
using FalHints.Client.Requests;

namespace FalHints.Runner.Apps;

/// <summary>
/// An app served by runners, the .NET counterpart of fal's <c>App</c>. One instance lives on each runner:
/// <see cref="SetupAsync"/> runs once when the runner starts, <see cref="ProvideHints"/> after every response.
/// Derive from <see cref="FalApp{TInput, TOutput}"/> for typed endpoints.
/// </summary>
public abstract class FalApp
{
    /// <summary>The app id, <c>owner/name</c>.</summary>
    public abstract string AppId { get; }

    /// <summary>Per-app settings; the defaults are fal's.</summary>
    public virtual FalAppSettings Settings => FalAppSettings.Default;

    /// <summary>Runs once per runner before the first request.</summary>
    public virtual Task SetupAsync(RunnerContext runner, CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Runs once when the runner stops.</summary>
    public virtual Task TeardownAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>What this runner is specialised for now; requests whose hint is in this list are preferred here.</summary>
    public virtual IReadOnlyList<string> ProvideHints() => [];

    /// <summary>Handles one request given as JSON and returns the output as JSON.</summary>
    /// <exception cref="FalAppException">The request failed for a reason the caller should see.</exception>
    public abstract Task<string> HandleJsonAsync(string inputJson, CancellationToken cancellationToken);
}

/// <summary>An app with one typed endpoint; input and output are JSON records in fal's snake_case.</summary>
public abstract class FalApp<TInput, TOutput> : FalApp
    where TInput : class
{
    /// <inheritdoc />
    public sealed override async Task<string> HandleJsonAsync(string inputJson, CancellationToken cancellationToken)
    {
        TInput? input;
        try
        {
            input = JsonSerializer.Deserialize<TInput>(inputJson, FalJson.Options);
        }
        catch (JsonException ex)
        {
            throw new FalAppException(ErrorCodes.InvalidInput, $"The input is not valid for app '{AppId}': {ex.Message}");
        }

        if (input is null)
        {
            throw new FalAppException(ErrorCodes.InvalidInput, $"The input for app '{AppId}' is null.");
        }

        var output = await RunAsync(input, cancellationToken);
        return JsonSerializer.Serialize(output, FalJson.Options);
    }

    /// <summary>The endpoint.</summary>
    protected abstract Task<TOutput> RunAsync(TInput input, CancellationToken cancellationToken);
}

/// <summary>Per-app settings.</summary>
/// <param name="MaxMultiplexing">Requests one runner serves at once (fal's <c>max_multiplexing</c>).</param>
/// <param name="RequestTimeout">How long one request may run on a runner.</param>
public sealed record FalAppSettings(int MaxMultiplexing, TimeSpan RequestTimeout)
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
