using System.Collections.Immutable;
using Orleans.Concurrency;

namespace FalHints.Client.Contracts;

/// <summary>
/// One router per app, keyed by the app id (<c>owner/name</c>). It keeps the index of which runner holds which
/// hints, queues the app's requests and places each on a runner.
/// </summary>
[Alias("falhints.IRouterGrain")]
public interface IRouterGrain : IGrainWithStringKey
{
    /// <summary>
    /// Queues a request and lets the app's placement policy start it at once (the default starts it whenever a runner
    /// is free; opt-in policies may hold it for a busy holder of its hint). A request without a hint gets the value of
    /// the app's hint field, if it declares one (named in the answer). When it starts, the answer names the runner, and
    /// the request grain stores that start with the request (no separate start notice is sent for it). Refused, with
    /// the error in the answer: a request for another app, input over the app's declared limits, a full queue.
    /// </summary>
    [Alias("EnqueueAsync")]
    Task<EnqueueResult> EnqueueAsync(RequestTicket ticket);

    /// <summary>A queued request's 0-based position, or null when it is not queued.</summary>
    [Alias("GetPositionAsync")]
    Task<int?> GetPositionAsync(string requestId);

    /// <summary>Removes a queued request (true); false when it is not queued (a running one is cancelled through its runner).</summary>
    [Alias("CancelAsync")]
    Task<bool> CancelAsync(string requestId);

    /// <summary>
    /// Request grains call this periodically until they complete, so a router that restarted learns again the
    /// requests it had accepted: queued ones are queued again (never refused, even by a full queue), running ones are
    /// counted on their runner, which is asked whether it still has them. Either gets the app's declared hint again, as
    /// at enqueue. A request the router knows already is left as it is.
    /// </summary>
    [Alias("ResumeAsync")]
    Task ResumeAsync(RequestTicket ticket, RequestState state, string? runnerId, int attempts);

    /// <summary>
    /// Runner: a dispatched request finished and its request grain has the result; <paramref name="hints"/> is the
    /// runner's state after it. One-way: a notice lost on the way is found by the router's check of requests in flight.
    /// </summary>
    [Alias("CompletedAsync"), OneWay]
    Task CompletedAsync(string requestId, HintsEvent hints);

    /// <summary>Asks up to <paramref name="runners"/> runners that do not hold <paramref name="hint"/> to load it now; returns those that did.</summary>
    [Alias("PrewarmAsync")]
    Task<ImmutableArray<string>> PrewarmAsync(string hint, int runners);

    /// <summary>What the router currently knows about the runners of its app and its queue.</summary>
    [Alias("GetSnapshotAsync")]
    Task<RouterSnapshot> GetSnapshotAsync();
}
