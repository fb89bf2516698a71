using FalHints.Client.Contracts;
using FalHints.Router.Placement;
using FalHints.Router.Queue;

namespace FalHints.Router.Routing;

/// <summary>Something <see cref="RouterCore"/> decided and its host carries out; what comes of it goes back to the core as an event.</summary>
public abstract record RouterEffect;

/// <summary>Send <paramref name="Sent"/> to its runner; answer with <see cref="RouterCore.DispatchSucceeded"/> or <see cref="RouterCore.DispatchFailed"/>.</summary>
/// <param name="Sent">The request, its runner and attempt, as the core counts it in flight.</param>
/// <param name="HintHit">Whether the runner held (or was loading) one of its hints.</param>
/// <param name="Waited">How long it waited since it was accepted.</param>
public sealed record SendToRunner(InFlightRequest Sent, bool HintHit, TimeSpan Waited) : RouterEffect;

/// <summary>Tell the request's grain that it started (its start was not in the enqueue's answer).</summary>
public sealed record NotifyStarted(string RequestId, string RunnerId, bool HintHit, int Attempt) : RouterEffect;

/// <summary>Tell the request's grain that the attempt on <paramref name="RunnerId"/> was lost and it waits again, with why.</summary>
public sealed record NotifyRequeued(string RequestId, string RunnerId, int Attempts, string Reason) : RouterEffect;

/// <summary>Complete the request with an error (its runner, when one ran it).</summary>
public sealed record FailRequest(RequestTicket Ticket, string Code, string Message, string? RunnerId) : RouterEffect;

/// <summary>Ask the runner for its current state; answer with <see cref="RouterCore.RunnerConfirmed"/>.</summary>
public sealed record ConfirmRunner(string RunnerId) : RouterEffect;

/// <summary>
/// Ask the request's runner whether it still runs it; answer with <see cref="RouterCore.RunnerAnswered"/>. An
/// <paramref name="Audit"/> (a request running for a while) also asks the request's grain, when the runner no longer
/// has it, whether it completed; otherwise the request was adopted after a restart.
/// </summary>
public sealed record AskRunner(InFlightRequest Request, bool Audit) : RouterEffect;

/// <summary>Ask a runner to load a model in the background (booked already); answer with <see cref="RouterCore.PrewarmAnswered"/>.</summary>
public sealed record PrewarmRunner(PrewarmChoice Prewarm, bool ForPolicy) : RouterEffect;

/// <summary>Call <see cref="RouterCore.Wake"/> at <paramref name="When"/> (sooner than the next tick).</summary>
public sealed record WakeAt(DateTimeOffset When) : RouterEffect;

/// <summary>For the log: a runner was dropped, with the requests it was running.</summary>
public sealed record RunnerDropped(string RunnerId, string Reason, int Requests) : RouterEffect;

/// <summary>For the log: a request completed without its runner's notice reaching the router; its slot is free again.</summary>
public sealed record CompletionUnreported(string RequestId, string RunnerId) : RouterEffect;

/// <summary>For the log: a runner no longer had a request that has not completed; it is retried.</summary>
public sealed record RequestMissing(string RequestId, string RunnerId) : RouterEffect;

/// <summary>For the log: the app refused a background load, so its policy asks for no more.</summary>
public sealed record PolicyPrewarmsOff(string RunnerId, string Hint, string Reason) : RouterEffect;

/// <summary>What a runner said when asked about a request.</summary>
public enum RunnerAnswerKind
{
    /// <summary>It runs the request.</summary>
    Running,

    /// <summary>It does not, and the request's grain has its result (the runner's notice was lost).</summary>
    Completed,

    /// <summary>It does not, and the request has not completed.</summary>
    Gone,

    /// <summary>The runner could not be reached.</summary>
    Unreachable,
}

/// <summary>The answer to <see cref="AskRunner"/>; <paramref name="Reason"/> says why a runner could not be reached.</summary>
public readonly record struct RunnerAnswer(RunnerAnswerKind Kind, string? Reason = null);
