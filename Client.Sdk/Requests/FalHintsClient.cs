using System.Text.Json;
using FalHints.Client.Contracts;

namespace FalHints.Client.Requests;

/// <summary>
/// Submits requests to FalHints apps over an Orleans cluster client. Thread-safe; create one per
/// <see cref="IGrainFactory"/> and share it.
/// </summary>
public sealed class FalHintsClient
{
    private readonly IGrainFactory _grains;

    /// <summary>Creates a client over a connected Orleans cluster client (or a silo's grain factory).</summary>
    public FalHintsClient(IGrainFactory grains)
    {
        ArgumentNullException.ThrowIfNull(grains);
        _grains = grains;
    }

    /// <summary>
    /// Queues <paramref name="inputJson"/> for <paramref name="appId"/> with an optional routing hint and returns a
    /// handle at once; the request runs whether or not anyone waits for it.
    /// </summary>
    /// <exception cref="ArgumentException">The app id, path or input JSON is malformed.</exception>
    public async Task<FalRequestHandle> EnqueueAsync(string appId, string inputJson, string? hint, string path = "/", SubmitOptions? options = null, CancellationToken cancellationToken = default)
    {
        if (!AppIds.TryValidate(appId, out var appError))
        {
            throw new ArgumentException(appError, nameof(appId));
        }

        if (string.IsNullOrEmpty(path) || !path.StartsWith('/'))
        {
            throw new ArgumentException($"The endpoint path '{path}' must start with '/'.", nameof(path));
        }

        EnsureJsonObject(inputJson);
        var request = new InferenceRequest(Guid.NewGuid().ToString("N"), appId, inputJson, hint, path, options);
        var grain = _grains.GetGrain<IRequestGrain>(request.RequestId);
        var submitted = await FalRequestHandle.RetryTransientAsync(() => grain.SubmitAsync(request), cancellationToken).ConfigureAwait(false);
        return new FalRequestHandle(grain, request.RequestId, submitted);
    }

    /// <summary>
    /// Sends <paramref name="inputJson"/> to <paramref name="appId"/> with an optional routing hint and waits for the
    /// result. Failures are returned in <see cref="InferenceResult.Error"/>, not thrown. Cancelling the token cancels the request.
    /// </summary>
    /// <exception cref="ArgumentException">The app id or the input JSON is malformed.</exception>
    public Task<InferenceResult> SubmitAsync(string appId, string inputJson, string? hint, CancellationToken cancellationToken = default) =>
        SubmitAsync(appId, inputJson, hint, "/", null, cancellationToken);

    /// <summary>
    /// Sends <paramref name="inputJson"/> to the endpoint <paramref name="path"/> of <paramref name="appId"/> with
    /// <paramref name="options"/>; see <see cref="SubmitAsync(string, string, string?, CancellationToken)"/>.
    /// </summary>
    public async Task<InferenceResult> SubmitAsync(string appId, string inputJson, string? hint, string path, SubmitOptions? options = null, CancellationToken cancellationToken = default)
    {
        var handle = await EnqueueAsync(appId, inputJson, hint, path, options, cancellationToken).ConfigureAwait(false);
        return await handle.GetResultAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Sends a typed input (serialized with snake_case names, as fal's apps expect) and returns the typed
    /// output, or throws <see cref="FalRequestException"/> naming what went wrong.
    /// </summary>
    public async Task<TOutput> RunAsync<TInput, TOutput>(string appId, TInput input, string? hint, CancellationToken cancellationToken = default)
    {
        var json = JsonSerializer.Serialize(input, FalJson.Options);
        var result = await SubmitAsync(appId, json, hint, cancellationToken).ConfigureAwait(false);
        if (result.Error is { } error)
        {
            throw new FalRequestException(result.RequestId, error);
        }

        return JsonSerializer.Deserialize<TOutput>(result.OutputJson!, FalJson.Options)
            ?? throw new FalRequestException(result.RequestId, new RequestError(ErrorCodes.AppError, "The app returned a null output."));
    }

    /// <summary>A handle on a request submitted earlier, by its id.</summary>
    public FalRequestHandle GetRequest(string requestId)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(requestId);
        return new FalRequestHandle(_grains.GetGrain<IRequestGrain>(requestId), requestId);
    }

    private static void EnsureJsonObject(string inputJson)
    {
        try
        {
            using var document = JsonDocument.Parse(inputJson);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new ArgumentException($"The input must be a JSON object, not {document.RootElement.ValueKind}.", nameof(inputJson));
            }
        }
        catch (JsonException ex)
        {
            throw new ArgumentException($"The input is not valid JSON: {ex.Message}", nameof(inputJson), ex);
        }
    }
}
