namespace FalHints.Client.Contracts;

/// <summary>
/// One router per app, keyed by the app id (<c>owner/name</c>). It keeps the index of which runner
/// holds which hints and places every request of its app.
/// </summary>
[Alias("falhints.IRouterGrain")]
public interface IRouterGrain : IGrainWithStringKey
{
    /// <summary>Places the request on a runner (or queues it) and returns once it has completed.</summary>
    [Alias("SubmitAsync")]
    Task<InferenceResult> SubmitAsync(InferenceRequest request);

    /// <summary>What the router currently knows about the runners of its app and its queue.</summary>
    [Alias("GetSnapshotAsync")]
    Task<RouterSnapshot> GetSnapshotAsync();
}
