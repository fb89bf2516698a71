using System.Collections.Immutable;

namespace FalHints.Client.Contracts;

/// <summary>A request for one app, as the router receives it.</summary>
/// <param name="RequestId">Unique id the caller can quote.</param>
/// <param name="AppId">The app, <c>owner/name</c>.</param>
/// <param name="InputJson">The app's input as a JSON object.</param>
/// <param name="Hint">The routing hint (matched exactly against runners' hints), or null.</param>
/// <param name="Path">The app's endpoint, <c>/</c> by default.</param>
/// <param name="Options">Priority, start timeout, retries and further hints.</param>
[GenerateSerializer, Immutable, Alias("falhints.InferenceRequest")]
public sealed record InferenceRequest(
    [property: Id(0)] string RequestId,
    [property: Id(1)] string AppId,
    [property: Id(2)] string InputJson,
    [property: Id(3)] string? Hint,
    [property: Id(4)] string Path = "/",
    [property: Id(5)] SubmitOptions? Options = null);

/// <summary>Queue priority: <c>normal</c> requests are always started before <c>low</c> ones.</summary>
public enum RequestPriority
{
    /// <summary>The default.</summary>
    Normal = 0,

    /// <summary>Started only when no normal request of the app is waiting.</summary>
    Low = 1,
}

/// <summary>How a request is queued and retried.</summary>
/// <param name="Priority">Queue priority.</param>
/// <param name="StartTimeout">Fail with <c>start_timeout</c> if the request has not started within this time.</param>
/// <param name="NoRetry">Do not retry the request on another runner when its runner dies.</param>
/// <param name="MoreHints">Further hints, less specific than the main one (e.g. a LoRA's base model): a runner holding
/// an earlier hint is preferred over one holding a later one.</param>
/// <param name="Webhook">Where the outcome is posted when the request ends (fal's <c>fal_webhook</c>); stored with the
/// request and delivered by whichever node holds it then.</param>
[GenerateSerializer, Immutable, Alias("falhints.SubmitOptions")]
public sealed record SubmitOptions(
    [property: Id(0)] RequestPriority Priority = RequestPriority.Normal,
    [property: Id(1)] TimeSpan? StartTimeout = null,
    [property: Id(2)] bool NoRetry = false,
    [property: Id(3)] ImmutableArray<string> MoreHints = default,
    [property: Id(4)] WebhookTarget? Webhook = null)
{
    /// <summary>Normal priority, no start timeout, retries on, one hint.</summary>
    public static SubmitOptions Default { get; } = new();
}

/// <summary>A webhook: the URL the outcome is posted to, and the caller-facing base URL of the gateway that accepted it (for file URLs).</summary>
[GenerateSerializer, Immutable, Alias("falhints.WebhookTarget")]
public sealed record WebhookTarget(
    [property: Id(0)] string Url,
    [property: Id(1)] string BaseUrl);

/// <summary>The outcome of a request: output JSON on success, an error otherwise.</summary>
/// <param name="RequestId">The request's id.</param>
/// <param name="OutputJson">The app's output as JSON, when it succeeded.</param>
/// <param name="Error">Why it failed, when it did.</param>
/// <param name="RunnerId">The runner that served it, if one did.</param>
/// <param name="HintHit">True when the request carried a hint that the serving runner held at dispatch.</param>
/// <param name="Attempt">The attempt that produced it (1 for the first runner tried); 0 when no runner did.</param>
[GenerateSerializer, Immutable, Alias("falhints.InferenceResult")]
public sealed record InferenceResult(
    [property: Id(0)] string RequestId,
    [property: Id(1)] string? OutputJson,
    [property: Id(2)] RequestError? Error,
    [property: Id(3)] string? RunnerId,
    [property: Id(4)] bool HintHit,
    [property: Id(5)] int Attempt = 0);

/// <summary>A failure that names its cause.</summary>
/// <param name="Code">A stable machine-readable code, see <see cref="ErrorCodes"/>.</param>
/// <param name="Message">What went wrong, for people.</param>
[GenerateSerializer, Immutable, Alias("falhints.RequestError")]
public sealed record RequestError(
    [property: Id(0)] string Code,
    [property: Id(1)] string Message);

/// <summary>Error codes carried by <see cref="RequestError"/>.</summary>
public static class ErrorCodes
{
    /// <summary>The input was rejected before or by the app (bad JSON, missing field, bad model id).</summary>
    public const string InvalidInput = "invalid_input";

    /// <summary>The model id is well formed but the model store has no such model.</summary>
    public const string ModelNotFound = "model_not_found";

    /// <summary>The model's files exist but cannot be read (corrupt or truncated weights).</summary>
    public const string ModelCorrupt = "model_corrupt";

    /// <summary>The app id names no app served by the runners.</summary>
    public const string AppNotFound = "app_not_found";

    /// <summary>The app has no endpoint at the requested path.</summary>
    public const string EndpointNotFound = "endpoint_not_found";

    /// <summary>The model does not fit the runner's pipeline memory budget.</summary>
    public const string InsufficientMemory = "insufficient_memory";

    /// <summary>The request ran longer than the app's request timeout.</summary>
    public const string RequestTimeout = "request_timeout";

    /// <summary>The app itself threw, or returned output that cannot be serialized.</summary>
    public const string AppError = "app_error";

    /// <summary>Runners failed (not the app) on every attempt the router made, or the caller opted out of retries.</summary>
    public const string RunnerFailed = "runner_failed";

    /// <summary>The request did not start within its start timeout.</summary>
    public const string StartTimeout = "start_timeout";

    /// <summary>The app's queue is at its maximum length.</summary>
    public const string QueueFull = "queue_full";

    /// <summary>The caller cancelled the request.</summary>
    public const string Cancelled = "cancelled";

    /// <summary>No request with this id is known (never submitted, or its result has expired).</summary>
    public const string RequestNotFound = "request_not_found";

    /// <summary>The cluster could not answer in time (a node joining or leaving); the HTTP gateway's 503. Retry shortly.</summary>
    public const string ClusterUnavailable = "cluster_unavailable";
}

/// <summary>What a router asks a runner to do; <paramref name="Attempt"/> counts from 1.</summary>
[GenerateSerializer, Immutable, Alias("falhints.RunnerInvocation")]
public sealed record RunnerInvocation(
    [property: Id(0)] string RequestId,
    [property: Id(1)] string AppId,
    [property: Id(2)] string InputJson,
    [property: Id(3)] string Path = "/",
    [property: Id(4)] int Attempt = 1,
    [property: Id(5)] bool HintHit = false);

/// <summary>Where a request stands.</summary>
public enum RequestState
{
    /// <summary>Waiting in the app's queue.</summary>
    Queued = 0,

    /// <summary>Running on a runner.</summary>
    InProgress = 1,

    /// <summary>Finished: <see cref="RequestStatus.Result"/> holds the output or the error.</summary>
    Completed = 2,
}

/// <summary>A request's status, as fal's queue API reports it.</summary>
/// <param name="RequestId">The request's id.</param>
/// <param name="AppId">Its app.</param>
/// <param name="State">Queued, in progress or completed.</param>
/// <param name="QueuePosition">0-based position in the app's queue while queued.</param>
/// <param name="RunnerId">The runner running or that ran it.</param>
/// <param name="HintHit">Whether that runner held the request's hint.</param>
/// <param name="Attempts">Runners tried so far.</param>
/// <param name="Result">The outcome, once completed.</param>
/// <param name="Logs">What happened to the request, oldest first.</param>
[GenerateSerializer, Immutable, Alias("falhints.RequestStatus")]
public sealed record RequestStatus(
    [property: Id(0)] string RequestId,
    [property: Id(1)] string AppId,
    [property: Id(2)] RequestState State,
    [property: Id(3)] int? QueuePosition,
    [property: Id(4)] string? RunnerId,
    [property: Id(5)] bool HintHit,
    [property: Id(6)] int Attempts,
    [property: Id(7)] InferenceResult? Result,
    [property: Id(8)] ImmutableArray<RequestLog> Logs);

/// <summary>One line of a request's log.</summary>
[GenerateSerializer, Immutable, Alias("falhints.RequestLog")]
public sealed record RequestLog(
    [property: Id(0)] DateTimeOffset Timestamp,
    [property: Id(1)] string Message);

/// <summary>A request as the router queues it: the request and when it was accepted.</summary>
[GenerateSerializer, Immutable, Alias("falhints.RequestTicket")]
public sealed record RequestTicket(
    [property: Id(0)] InferenceRequest Request,
    [property: Id(1)] DateTimeOffset AcceptedAt)
{
    /// <summary>The request id.</summary>
    public string RequestId => Request.RequestId;

    /// <summary>The options, or the defaults.</summary>
    public SubmitOptions Options => Request.Options ?? SubmitOptions.Default;

    /// <summary>When the request must have started by, if it has a start timeout.</summary>
    public DateTimeOffset? StartDeadline => Options.StartTimeout is { } timeout ? AcceptedAt + timeout : null;
}

/// <summary>The router's answer to an enqueue: queued at a position, already started, or refused.</summary>
/// <param name="State">Queued, already started, or (refused) completed.</param>
/// <param name="QueuePosition">The 0-based position while queued.</param>
/// <param name="Error">Why it was refused.</param>
/// <param name="DeclaredHint">The hint the router took from the app's hint field, when the caller sent none.</param>
/// <param name="RunnerId">When this enqueue started the request: the runner it was sent to.</param>
/// <param name="Attempt">Then its attempt (1).</param>
/// <param name="HintHit">Then whether that runner held its hint.</param>
[GenerateSerializer, Immutable, Alias("falhints.EnqueueResult")]
public sealed record EnqueueResult(
    [property: Id(0)] RequestState State,
    [property: Id(1)] int? QueuePosition,
    [property: Id(2)] RequestError? Error,
    [property: Id(3)] string? DeclaredHint = null,
    [property: Id(4)] string? RunnerId = null,
    [property: Id(5)] int Attempt = 0,
    [property: Id(6)] bool HintHit = false);

/// <summary>A runner's answer: the output or the error, and its hints after the response.</summary>
[GenerateSerializer, Immutable, Alias("falhints.RunnerResponse")]
public sealed record RunnerResponse(
    [property: Id(0)] string? OutputJson,
    [property: Id(1)] RequestError? Error,
    [property: Id(2)] HintsEvent Hints);

/// <summary>Why a runner published a hints event.</summary>
public enum HintsEventKind
{
    /// <summary>The runner started; it holds nothing and matches any request.</summary>
    Started = 0,

    /// <summary>The runner finished a response (success or failure).</summary>
    Response = 1,

    /// <summary>Periodic: the runner is alive and holds these hints.</summary>
    Heartbeat = 2,

    /// <summary>The runner is stopping and takes no new work.</summary>
    Draining = 3,
}

/// <summary>
/// What a runner holds for one app, published on the hint stream after every response, on start,
/// on drain and as a heartbeat. Routers apply only events with a newer <see cref="Sequence"/> per runner.
/// </summary>
/// <param name="RunnerId">The runner, <c>{silo}/{device}</c>.</param>
/// <param name="Silo">The silo the runner is pinned to.</param>
/// <param name="Device">The runner's device.</param>
/// <param name="AppId">The app these hints are for.</param>
/// <param name="Hints">The app's <c>ProvideHints()</c>, in the app's order, within the runner's limits.</param>
/// <param name="Loading">Pipelines being loaded now (hints about to hold).</param>
/// <param name="InFlight">Requests of the app running on the runner.</param>
/// <param name="Capacity">Requests of the app the runner takes at once (max multiplexing).</param>
/// <param name="Sequence">Grows with every event of the runner, across reactivations.</param>
/// <param name="Timestamp">When the event was made.</param>
/// <param name="Kind">Why it was published.</param>
/// <param name="Cache">The runner's pipeline cache: bytes used of budget, load and hit counts, load times.</param>
/// <param name="Routing">What the app tells routers: its hint field and mean inference time.</param>
/// <param name="RequestId">For a response event, the request it followed.</param>
/// <param name="Warm">Pipelines held in host memory, not on the device (a GPU runner's host tier), most recently used
/// first: not hints, but a load from here costs only the copy to the device (see <see cref="CacheUsage.MeanPromotionMs"/>).</param>
[GenerateSerializer, Immutable, Alias("falhints.HintsEvent")]
public sealed record HintsEvent(
    [property: Id(0)] string RunnerId,
    [property: Id(1)] string Silo,
    [property: Id(2)] string Device,
    [property: Id(3)] string AppId,
    [property: Id(4)] ImmutableArray<string> Hints,
    [property: Id(5)] int InFlight,
    [property: Id(6)] int Capacity,
    [property: Id(7)] long Sequence,
    [property: Id(8)] DateTimeOffset Timestamp,
    [property: Id(9)] HintsEventKind Kind,
    [property: Id(10)] ImmutableArray<string> Loading,
    [property: Id(11)] CacheUsage Cache,
    [property: Id(12)] AppRouting? Routing = null,
    [property: Id(13)] string? RequestId = null,
    [property: Id(14)] ImmutableArray<string> Warm = default);

/// <summary>What an app tells routers about itself.</summary>
/// <param name="HintField">A top-level input field whose string value is the hint when the caller sends none.</param>
/// <param name="MeanInferenceMs">Mean time of the app's requests on the runner, in milliseconds (0 before the first).</param>
/// <param name="InputLimits">Limits on the app's input that routers check when a request is submitted.</param>
[GenerateSerializer, Immutable, Alias("falhints.AppRouting")]
public sealed record AppRouting(
    [property: Id(0)] string? HintField,
    [property: Id(1)] double MeanInferenceMs,
    [property: Id(2)] ImmutableArray<InputLimit> InputLimits = default);

/// <summary>A limit an app puts on its input: the top-level string field <paramref name="Field"/> holds at most <paramref name="MaxLength"/> characters.</summary>
[GenerateSerializer, Immutable, Alias("falhints.InputLimit")]
public sealed record InputLimit(
    [property: Id(0)] string Field,
    [property: Id(1)] int MaxLength);

/// <summary>A runner's pipeline cache at one moment.</summary>
/// <param name="BytesUsed">Bytes of the pipelines held and being loaded.</param>
/// <param name="BudgetBytes">The runner's memory budget for pipelines.</param>
/// <param name="Hits">Requests that found their pipeline loaded (or loading).</param>
/// <param name="Misses">Requests that had to load their pipeline.</param>
/// <param name="Loads">Loads completed.</param>
/// <param name="Evictions">Pipelines evicted to make room.</param>
/// <param name="MeanLoadMs">Mean time of the completed loads, in milliseconds (0 before the first).</param>
/// <param name="HostBytesUsed">Bytes of pipelines held in host memory (the host tier), and being moved there.</param>
/// <param name="HostBudgetBytes">The runner's host-memory budget for pipelines (0: no host tier, as on CPU runners).</param>
/// <param name="Promotions">Pipelines brought back from host memory to the device (a request that found its pipeline warm).</param>
/// <param name="Demotions">Pipelines evicted from the device and kept in host memory (counted in <see cref="Evictions"/> too).</param>
/// <param name="MeanPromotionMs">Mean time to bring a pipeline back from host memory, in milliseconds (0 before the first).</param>
/// <param name="LoadBytesPerSecond">Bytes per second of the completed loads from the model store (0 before the first).</param>
/// <param name="PromotionBytesPerSecond">Bytes per second of the promotions from host memory (0 before the first).</param>
[GenerateSerializer, Immutable, Alias("falhints.CacheUsage")]
public sealed record CacheUsage(
    [property: Id(0)] long BytesUsed,
    [property: Id(1)] long BudgetBytes,
    [property: Id(2)] long Hits,
    [property: Id(3)] long Misses,
    [property: Id(4)] long Loads,
    [property: Id(5)] long Evictions,
    [property: Id(6)] double MeanLoadMs,
    [property: Id(7)] long HostBytesUsed = 0,
    [property: Id(8)] long HostBudgetBytes = 0,
    [property: Id(9)] long Promotions = 0,
    [property: Id(10)] long Demotions = 0,
    [property: Id(11)] double MeanPromotionMs = 0,
    [property: Id(12)] double LoadBytesPerSecond = 0,
    [property: Id(13)] double PromotionBytesPerSecond = 0)
{
    /// <summary>No cache, or an empty one.</summary>
    public static CacheUsage None { get; } = new(0, 0, 0, 0, 0, 0, 0);
}

/// <summary>A router's view of one runner.</summary>
[GenerateSerializer, Immutable, Alias("falhints.RunnerSnapshot")]
public sealed record RunnerSnapshot(
    [property: Id(0)] string RunnerId,
    [property: Id(1)] ImmutableArray<string> Hints,
    [property: Id(2)] int InFlight,
    [property: Id(3)] int Capacity,
    [property: Id(4)] long Sequence,
    [property: Id(5)] ImmutableArray<string> Loading,
    [property: Id(6)] CacheUsage Cache,
    [property: Id(7)] DateTimeOffset LastSeen = default,
    [property: Id(8)] string Silo = "",
    [property: Id(9)] ImmutableArray<string> Warm = default);

/// <summary>A router's view of its app: runners it knows and requests waiting.</summary>
[GenerateSerializer, Immutable, Alias("falhints.RouterSnapshot")]
public sealed record RouterSnapshot(
    [property: Id(0)] string AppId,
    [property: Id(1)] ImmutableArray<RunnerSnapshot> Runners,
    [property: Id(2)] int Queued,
    [property: Id(3)] long Hits,
    [property: Id(4)] long Misses,
    [property: Id(5)] int InFlight,
    [property: Id(6)] string Policy,
    [property: Id(7)] long Retries);

/// <summary>A runner's own account of itself.</summary>
/// <param name="RunnerId">The runner, <c>{silo}/{device}</c>.</param>
/// <param name="HostSilo">The name of the silo the activation actually runs on.</param>
/// <param name="Apps">The latest state of each app the runner hosts.</param>
/// <param name="Unreported">Dispatched requests still running or not yet reported to their request grain and router.</param>
[GenerateSerializer, Immutable, Alias("falhints.RunnerStatus")]
public sealed record RunnerStatus(
    [property: Id(0)] string RunnerId,
    [property: Id(1)] string HostSilo,
    [property: Id(2)] ImmutableArray<HintsEvent> Apps,
    [property: Id(3)] int Unreported = 0);
