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
        : this(grains, TimeProvider.System)
    {
    }

    /// <summary>Creates a client over a connected Orleans cluster client, reading time from <paramref name="time"/>.</summary>
    public FalHintsClient(IGrainFactory grains, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(grains);
        ArgumentNullException.ThrowIfNull(time);
        _grains = grains;
        Apps = new HostedAppCatalog(grains, time);
    }

    /// <summary>The apps the cluster serves, as this client last read them; submissions for others fail at once.</summary>
    public HostedAppCatalog Apps { get; }

    /// <summary>
    /// Queues <paramref name="inputJson"/> for <paramref name="appId"/> with an optional routing hint and returns a
    /// handle at once; the request runs whether or not anyone waits for it.
    /// </summary>
    /// <exception cref="ArgumentException">The app id, path or input JSON is malformed.</exception>
    /// <exception cref="AppNotFoundException">Every silo of the cluster has said what it serves, and none serves the app.</exception>
    public async Task<FalRequestHandle> EnqueueAsync(string appId, string inputJson, string? hint, string path = "/", SubmitOptions? options = null, CancellationToken cancellationToken = default)
    {
        var request = NewRequest(appId, inputJson, hint, path, options);
        if (await Apps.RefusesAsync(appId, cancellationToken).ConfigureAwait(false))
        {
            throw new AppNotFoundException(request.RequestId, AppNotFound(appId));
        }

        var grain = _grains.GetGrain<IRequestGrain>(request.RequestId);
        var submitted = await FalRequestHandle.RetryTransientAsync(() => grain.SubmitAsync(request), cancellationToken).ConfigureAwait(false);
        return new FalRequestHandle(grain, request.RequestId, submitted);
    }

    /// <summary>The error of a request for an app no silo serves.</summary>
    public static RequestError AppNotFound(string appId) => new(ErrorCodes.AppNotFound, $"No silo of this cluster serves app '{appId}'.");

    /// <summary>A new request, checked as <see cref="EnqueueAsync"/> documents.</summary>
    private static InferenceRequest NewRequest(string appId, string inputJson, string? hint, string path, SubmitOptions? options)
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
        var request = new InferenceRequest(RequestIds.New(), appId, inputJson, hint, path, options);
        if (!Hints.TryValidate(request, out var hintError))
        {
            throw new ArgumentException(hintError, nameof(hint));
        }

        return request;
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
    /// <paramref name="options"/>; see <see cref="SubmitAsync(string, string, string?, CancellationToken)"/>. One call
    /// submits and waits, answered when the request completes (a request still running after a long-poll interval is
    /// then waited for as <see cref="FalRequestHandle.GetResultAsync(CancellationToken)"/> does).
    /// </summary>
    public async Task<InferenceResult> SubmitAsync(string appId, string inputJson, string? hint, string path, SubmitOptions? options = null, CancellationToken cancellationToken = default)
    {
        var request = NewRequest(appId, inputJson, hint, path, options);
        if (await Apps.RefusesAsync(appId, cancellationToken).ConfigureAwait(false))
        {
            return new InferenceResult(request.RequestId, null, AppNotFound(appId), null, HintHit: false);
        }

        var grain = _grains.GetGrain<IRequestGrain>(request.RequestId);
        var handle = new FalRequestHandle(grain, request.RequestId);
        RequestStatus submitted;
        try
        {
            submitted = await FalRequestHandle.RetryTransientAsync(() => grain.SubmitAndWaitAsync(request, FalRequestHandle.PollWait), cancellationToken)
                .ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            await grain.CancelAsync().ConfigureAwait(false);
            throw;
        }

        return submitted.State == RequestState.Completed ? submitted.Result! : await handle.GetResultAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Queues a typed input (serialized in fal's snake_case) and returns a handle at once.</summary>
    public Task<FalRequestHandle> EnqueueInputAsync<TInput>(string appId, TInput input, string? hint, SubmitOptions? options = null, CancellationToken cancellationToken = default) =>
        EnqueueAsync(appId, JsonSerializer.Serialize(input, FalJson.Options), hint, "/", options, cancellationToken);

    /// <summary>
    /// Runs a typed input and returns the typed output in one call that waits (like fal's <c>run</c>), or throws the
    /// <see cref="FalRequestException"/> subclass that names the failure.
    /// </summary>
    public async Task<TOutput> RunAsync<TInput, TOutput>(string appId, TInput input, string? hint, CancellationToken cancellationToken = default)
    {
        var handle = await EnqueueInputAsync(appId, input, hint, null, cancellationToken).ConfigureAwait(false);
        return await handle.GetResultAsync<TOutput>(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Submits a typed input and waits for its typed output (like fal's <c>subscribe</c>), calling
    /// <paramref name="onQueueUpdate"/> with each status change (queued with position, in progress, completed).
    /// </summary>
    public async Task<TOutput> SubscribeAsync<TInput, TOutput>(string appId, TInput input, string? hint, Action<RequestStatus> onQueueUpdate,
        SubmitOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(onQueueUpdate);
        var handle = await EnqueueInputAsync(appId, input, hint, options, cancellationToken).ConfigureAwait(false);
        await foreach (var status in handle.StreamStatusAsync(cancellationToken).ConfigureAwait(false))
        {
            onQueueUpdate(status);
        }

        return await handle.GetResultAsync<TOutput>(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The typed output of a completed request, or the exception that names its failure.</summary>
    internal static TOutput OutputOf<TOutput>(InferenceResult result)
    {
        if (result.Error is { } error)
        {
            throw FalRequestException.From(result.RequestId, error);
        }

        return JsonSerializer.Deserialize<TOutput>(result.OutputJson!, FalJson.Options)
            ?? throw new FalRequestException(result.RequestId, new RequestError(ErrorCodes.AppError, "The app returned a null output."));
    }

    /// <summary>
    /// The apps the cluster's active silos serve now, and whether every silo has reported: when it is complete, a request
    /// for an app not listed would fail with <c>app_not_found</c>.
    /// </summary>
    public Task<HostedApps> GetHostedAppsAsync(CancellationToken cancellationToken = default) =>
        _grains.GetGrain<IAppRegistryGrain>(0).GetAppsAsync().WaitAsync(cancellationToken);

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
