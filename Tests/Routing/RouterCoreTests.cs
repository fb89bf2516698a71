using FalHints.Client.Contracts;
using FalHints.Router.Placement;
using FalHints.Router.Routing;
using static FalHints.Tests.Support.Runners;

namespace FalHints.Tests.Routing;

/// <summary>The router's lifecycle (queueing, restarts, lost runners, lost reports, discovery) on the pure core, in virtual time.</summary>
public sealed class RouterCoreTests
{
    private static readonly RouterOptions Options = new()
    {
        MaxQueueLength = 3,
        MaxAttempts = 3,
        DiscoveryTimeout = TimeSpan.FromSeconds(30),
        RunnerTimeout = TimeSpan.FromSeconds(35),
        InFlightCheckInterval = TimeSpan.FromSeconds(15),
        PolicyPrewarms = false,
    };

    private static readonly HashSet<string> Live = new(["a", "b"], StringComparer.Ordinal);

    private static RouterCore NewCore(DateTimeOffset? now = null) => new("o/app", new HintAffinityPolicy(), Options, now ?? T0);

    /// <summary>A runner announces itself on the stream, is asked to confirm its state, and does.</summary>
    private static void Join(RouterCore core, string runnerId, int capacity = 1, string[]? hints = null, DateTimeOffset? at = null)
    {
        var announced = Event(runnerId, capacity, hints: hints);
        core.RunnerEvent(announced, at ?? T0);
        Assert.Contains(new ConfirmRunner(runnerId), core.TakeEffects());
        core.RunnerConfirmed(runnerId, announced, at ?? T0);
    }

    private static RequestTicket Input(string id, string inputJson, DateTimeOffset? at = null) =>
        new(new InferenceRequest(id, "o/app", inputJson, null), at ?? T0);

    private static T Only<T>(IReadOnlyList<RouterEffect> effects) => Assert.Single(effects.OfType<T>());

    /// <summary>The runner took it after every event made so far: returns the effects that causes (a start notice, unless the enqueue answered it).</summary>
    private static IReadOnlyList<RouterEffect> Took(RouterCore core, SendToRunner send)
    {
        core.DispatchSucceeded(send, LastSequence);
        return core.TakeEffects();
    }

    [Fact]
    public void Requests_wait_in_order_with_their_position_and_start_when_runners_free()
    {
        var core = NewCore();
        Join(core, "a/cpu:0");

        var first = core.Enqueue(Ticket(null, "r1"), T0);
        Assert.Equal((RequestState.InProgress, "a/cpu:0", 1), (first.State, first.RunnerId, first.Attempt));
        Assert.Empty(Took(core, Only<SendToRunner>(core.TakeEffects())));
        Assert.Equal((RequestState.Queued, 0), (core.Enqueue(Ticket(null, "r2"), T0).State, core.Dispatcher.Queue.Position("r2")));
        Assert.Equal(1, core.Enqueue(Ticket(null, "r3"), T0).QueuePosition);
        Assert.Empty(core.TakeEffects());

        core.Completed("r1", Event("a/cpu:0"), T0.AddSeconds(1));

        var next = Only<SendToRunner>(core.TakeEffects());
        Assert.Equal(("r2", 1), (next.Sent.Ticket.RequestId, next.Sent.Attempt));
        Assert.Equal(new NotifyStarted("r2", "a/cpu:0", false, 1), Assert.Single(Took(core, next)));
        Assert.Equal(0, core.Dispatcher.Queue.Position("r3"));
    }

    [Fact]
    public void A_full_queue_refuses_new_requests_and_cancel_frees_a_place()
    {
        var core = NewCore();
        for (var i = 0; i < 3; i++)
        {
            Assert.Null(core.Enqueue(Ticket(null, $"q{i}"), T0).Error);
        }

        var refused = core.Enqueue(Ticket(null, "q3"), T0);

        Assert.Equal(ErrorCodes.QueueFull, refused.Error!.Code);
        Assert.Contains("3 requests waiting", refused.Error.Message, StringComparison.Ordinal);
        Assert.True(core.Cancel("q0"));
        Assert.False(core.Cancel("q0"));
        Assert.Equal(0, core.Dispatcher.Queue.Position("q1"));
        Assert.Null(core.Enqueue(Ticket(null, "q3"), T0).Error);
    }

    [Fact]
    public void A_request_not_started_within_its_start_timeout_fails_at_the_next_tick()
    {
        var core = NewCore();
        core.Enqueue(Ticket(null, "late", startTimeout: TimeSpan.FromMilliseconds(300)), T0);

        core.Tick(T0.AddMilliseconds(200), Live);
        Assert.Empty(core.TakeEffects());
        core.Tick(T0.AddSeconds(1), Live);

        var fail = Only<FailRequest>(core.TakeEffects());
        Assert.Equal(("late", ErrorCodes.StartTimeout), (fail.Ticket.RequestId, fail.Code));
        Assert.Equal(0, core.Dispatcher.Queue.Count);
    }

    [Fact]
    public void With_no_runner_for_the_discovery_timeout_waiting_requests_fail_with_app_not_found()
    {
        var core = NewCore();
        core.Enqueue(Ticket(null, "r", at: T0), T0);

        core.Tick(T0.AddSeconds(29), Live);
        Assert.Empty(core.TakeEffects());
        core.Tick(T0.AddSeconds(30), Live);

        var fail = Only<FailRequest>(core.TakeEffects());
        Assert.Equal(ErrorCodes.AppNotFound, fail.Code);
        Assert.Contains("within 30 s", fail.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_runner_seen_only_on_the_stream_takes_nothing_until_it_confirms_its_state()
    {
        var core = NewCore();
        var announced = Event("a/cpu:0");
        core.RunnerEvent(announced, T0);
        Assert.Equal(new ConfirmRunner("a/cpu:0"), Assert.Single(core.TakeEffects()));

        Assert.Equal(RequestState.Queued, core.Enqueue(Ticket(null, "r"), T0).State);
        core.RunnerConfirmed("a/cpu:0", null, T0);
        Assert.Empty(core.TakeEffects());

        // Asked again at its next event; once it answers, it takes the request.
        core.RunnerEvent(Event("a/cpu:0"), T0.AddSeconds(1));
        Assert.Equal(new ConfirmRunner("a/cpu:0"), Assert.Single(core.TakeEffects()));
        core.RunnerConfirmed("a/cpu:0", Event("a/cpu:0"), T0.AddSeconds(1));
        Assert.Equal("r", Only<SendToRunner>(core.TakeEffects()).Sent.Ticket.RequestId);
    }

    [Fact]
    public void A_dispatch_that_fails_takes_back_that_request_only_and_suspects_its_silo_until_its_runners_confirm()
    {
        var core = NewCore();
        Join(core, "a/cpu:0", capacity: 2);
        Join(core, "a/cpu:1");
        core.Enqueue(Ticket(null, "running"), T0);
        var running = Only<SendToRunner>(core.TakeEffects());
        Took(core, running);
        core.Enqueue(Ticket(null, "lost"), T0);
        var lost = Only<SendToRunner>(core.TakeEffects());

        core.DispatchFailed(lost, "timeout", T0);

        var effects = core.TakeEffects();
        Assert.Equal(["a/cpu:0", "a/cpu:1"], effects.OfType<ConfirmRunner>().Select(c => c.RunnerId).Order(StringComparer.Ordinal));
        var requeued = Only<NotifyRequeued>(effects);
        Assert.Equal(("lost", lost.Sent.RunnerId, 1), (requeued.RequestId, requeued.RunnerId, requeued.Attempts));
        Assert.EndsWith("could not be reached (timeout); retrying (attempt 1 of 3 failed).", requeued.Reason, StringComparison.Ordinal);
        Assert.Empty(effects.OfType<SendToRunner>());
        Assert.Same(running.Sent, core.Dispatcher.FindInFlight("running"));

        core.RunnerConfirmed("a/cpu:1", Event("a/cpu:1"), T0);
        var retry = Only<SendToRunner>(core.TakeEffects());
        Assert.Equal(("lost", "a/cpu:1", 2), (retry.Sent.Ticket.RequestId, retry.Sent.RunnerId, retry.Sent.Attempt));
    }

    [Fact]
    public void A_request_that_fails_on_every_attempt_fails_with_the_reason()
    {
        var core = NewCore();
        Join(core, "a/cpu:0");
        core.Enqueue(Ticket(null, "r"), T0);
        for (var attempt = 1; attempt <= 3; attempt++)
        {
            var send = Only<SendToRunner>(core.TakeEffects());
            Assert.Equal(attempt, send.Sent.Attempt);
            core.DispatchFailed(send, "refused", T0);
            var effects = core.TakeEffects();
            if (attempt == 3)
            {
                var fail = Only<FailRequest>(effects);
                Assert.Equal((ErrorCodes.RunnerFailed, "a/cpu:0"), (fail.Code, fail.RunnerId));
                Assert.EndsWith("and all 3 attempts failed.", fail.Message, StringComparison.Ordinal);
                return;
            }

            core.RunnerConfirmed("a/cpu:0", Event("a/cpu:0"), T0);
        }
    }

    [Fact]
    public void A_runner_whose_silo_leaves_is_dropped_and_its_requests_retried_elsewhere_or_failed_if_they_opted_out()
    {
        var core = NewCore();
        Join(core, "a/cpu:0", capacity: 2);
        Join(core, "b/cpu:0", hints: ["busy"]);
        core.Enqueue(Ticket("busy", "on-b"), T0);
        Took(core, Only<SendToRunner>(core.TakeEffects()));
        core.Enqueue(Ticket(null, "retried"), T0);
        core.Enqueue(Ticket(null, "no-retry", noRetry: true), T0);
        var sent = core.TakeEffects().OfType<SendToRunner>().ToList();
        Assert.All(sent, s => Assert.Equal("a/cpu:0", s.Sent.RunnerId));
        sent.ForEach(s => Took(core, s));
        core.Completed("on-b", Event("b/cpu:0", hints: ["busy"]), T0);

        core.Tick(T0.AddSeconds(1), new HashSet<string>(["b"], StringComparer.Ordinal));

        var effects = core.TakeEffects();
        Assert.Equal(new RunnerDropped("a/cpu:0", "silo a left the cluster", 2), Only<RunnerDropped>(effects));
        Assert.Contains("a/cpu:0 was lost (silo a left the cluster); retrying", Only<NotifyRequeued>(effects).Reason, StringComparison.Ordinal);
        var fail = Only<FailRequest>(effects);
        Assert.Equal("no-retry", fail.Ticket.RequestId);
        Assert.EndsWith("and the caller opted out of retries.", fail.Message, StringComparison.Ordinal);
        var retry = Only<SendToRunner>(effects);
        Assert.Equal(("retried", "b/cpu:0", 2), (retry.Sent.Ticket.RequestId, retry.Sent.RunnerId, retry.Sent.Attempt));
        Assert.Single(core.Snapshot().Runners);
    }

    [Fact]
    public void A_runner_silent_for_the_runner_timeout_is_dropped()
    {
        var core = NewCore();
        Join(core, "a/cpu:0");

        core.Tick(T0.AddSeconds(35), Live);
        Assert.Empty(core.TakeEffects().OfType<RunnerDropped>());
        core.Tick(T0.AddSeconds(36), Live);

        Assert.Equal("no heartbeat for 36 s", Only<RunnerDropped>(core.TakeEffects()).Reason);
        Assert.Empty(core.Snapshot().Runners);
    }

    [Fact]
    public void A_request_whose_runner_no_longer_has_it_is_retried_and_one_that_completed_unreported_frees_its_slot()
    {
        var core = NewCore();
        Join(core, "a/cpu:0", capacity: 2);
        core.Enqueue(Ticket(null, "lost"), T0);
        core.Enqueue(Ticket(null, "done"), T0);
        core.TakeEffects().OfType<SendToRunner>().ToList().ForEach(s => Took(core, s));

        // Audits come only for requests running longer than the check interval.
        core.Tick(T0.AddSeconds(10), Live);
        Assert.Empty(core.TakeEffects());
        core.Tick(T0.AddSeconds(16), Live);
        var asks = core.TakeEffects().OfType<AskRunner>().ToDictionary(a => a.Request.Ticket.RequestId);
        Assert.True(asks.Values.All(a => a.Audit));
        Assert.Equal(["done", "lost"], asks.Keys.Order(StringComparer.Ordinal));

        core.RunnerAnswered(asks["done"], new RunnerAnswer(RunnerAnswerKind.Completed), T0.AddSeconds(16));
        Assert.Equal(new CompletionUnreported("done", "a/cpu:0"), Assert.Single(core.TakeEffects()));
        core.RunnerAnswered(asks["lost"], new RunnerAnswer(RunnerAnswerKind.Gone), T0.AddSeconds(16));

        var effects = core.TakeEffects();
        Assert.Equal(new RequestMissing("lost", "a/cpu:0"), Only<RequestMissing>(effects));
        Assert.EndsWith("no longer had the request; retrying (attempt 1 of 3 failed).", Only<NotifyRequeued>(effects).Reason, StringComparison.Ordinal);
        Assert.Equal(2, Only<SendToRunner>(effects).Sent.Attempt);
    }

    [Fact]
    public void A_runner_whose_reports_since_it_took_a_request_count_fewer_at_two_sweeps_is_asked_about_it()
    {
        var core = NewCore();
        Join(core, "a/cpu:0");
        core.Enqueue(Ticket(null, "r"), T0);
        var send = Only<SendToRunner>(core.TakeEffects());

        // A report the runner made before it took the request proves nothing, however late it arrives.
        var before = Event("a/cpu:0");
        Took(core, send);
        core.RunnerEvent(before, T0.AddMilliseconds(500));
        core.Tick(T0.AddMilliseconds(500), Live);
        core.Tick(T0.AddSeconds(3), Live);
        Assert.Empty(core.TakeEffects());

        // One made after it, counting none: a notice may be on its way, so the router asks only if the next sweep
        // still finds the request there.
        core.RunnerEvent(Event("a/cpu:0"), T0.AddSeconds(3.2));
        core.Tick(T0.AddSeconds(4), Live);
        Assert.Empty(core.TakeEffects());
        core.Tick(T0.AddSeconds(5), Live);
        var ask = Only<AskRunner>(core.TakeEffects());
        Assert.True(ask.Audit);
        core.RunnerAnswered(ask, new RunnerAnswer(RunnerAnswerKind.Completed), T0.AddSeconds(5));
        Assert.Equal(new CompletionUnreported("r", "a/cpu:0"), Assert.Single(core.TakeEffects()));
        Assert.Equal(0, core.Snapshot().InFlight);
    }

    [Fact]
    public void A_notice_that_arrives_between_two_sweeps_after_its_runners_report_costs_no_question()
    {
        var core = NewCore();
        Join(core, "a/cpu:0");
        core.Enqueue(Ticket(null, "r"), T0);
        Took(core, Only<SendToRunner>(core.TakeEffects()));

        // The runner publishes after the response, then reports the completion: the event can overtake the notice.
        var after = Event("a/cpu:0");
        core.RunnerEvent(after, T0.AddMilliseconds(100));
        core.Tick(T0.AddSeconds(1), Live);
        core.Completed("r", after, T0.AddSeconds(1.1));
        core.Tick(T0.AddSeconds(2), Live);
        core.Tick(T0.AddSeconds(3), Live);

        Assert.Empty(core.TakeEffects().OfType<AskRunner>());
        Assert.Equal(0, core.Snapshot().InFlight);
    }

    [Fact]
    public void An_audit_the_runner_cannot_answer_is_asked_again_at_a_later_tick_and_takes_nothing_back()
    {
        var core = NewCore();
        Join(core, "a/cpu:0");
        core.Enqueue(Ticket(null, "r"), T0);
        Took(core, Only<SendToRunner>(core.TakeEffects()));
        core.RunnerEvent(Event("a/cpu:0") with { InFlight = 1 }, T0.AddSeconds(15));
        core.Tick(T0.AddSeconds(16), Live);
        var ask = Only<AskRunner>(core.TakeEffects());

        // No second audit while one is open.
        core.Tick(T0.AddSeconds(32), Live);
        Assert.Empty(core.TakeEffects().OfType<AskRunner>());
        core.RunnerAnswered(ask, new RunnerAnswer(RunnerAnswerKind.Unreachable, "timeout"), T0.AddSeconds(32));
        Assert.Empty(core.TakeEffects());
        Assert.NotNull(core.Dispatcher.FindInFlight("r"));

        core.RunnerEvent(Event("a/cpu:0") with { InFlight = 1 }, T0.AddSeconds(45));
        core.Tick(T0.AddSeconds(48), Live);
        Assert.Equal("r", Only<AskRunner>(core.TakeEffects()).Request.Ticket.RequestId);
    }

    [Fact]
    public void A_restarted_router_rebuilds_its_queue_and_requests_in_flight_from_their_grains_and_checks_the_adopted_ones()
    {
        var core = NewCore(T0.AddMinutes(1));
        var now = T0.AddMinutes(1);

        Assert.True(core.Resume(Ticket(null, "running"), RequestState.InProgress, "a/cpu:0", 1, now));
        Assert.True(core.Resume(Ticket(null, "queued"), RequestState.Queued, null, 0, now));
        Assert.False(core.Resume(Ticket(null, "queued"), RequestState.Queued, null, 0, now));
        var verify = Only<AskRunner>(core.TakeEffects());
        Assert.False(verify.Audit);
        Assert.Equal((1, 1), (core.Snapshot().Queued, core.Snapshot().InFlight));

        // The runner, busy with the adopted request, takes the queued one only once that one is done.
        core.RunnerEvent(Event("a/cpu:0") with { InFlight = 1 }, now);
        core.RunnerConfirmed("a/cpu:0", Event("a/cpu:0") with { InFlight = 1 }, now);
        core.RunnerAnswered(verify, new RunnerAnswer(RunnerAnswerKind.Running), now);
        Assert.Empty(core.TakeEffects().OfType<SendToRunner>());
        core.Completed("running", Event("a/cpu:0"), now);

        Assert.Equal("queued", Only<SendToRunner>(core.TakeEffects()).Sent.Ticket.RequestId);
    }

    [Fact]
    public void An_adopted_request_its_runner_lost_is_retried()
    {
        var core = NewCore();
        core.Resume(Ticket(null, "gone"), RequestState.InProgress, "a/cpu:0", 1, T0);
        core.Resume(Ticket(null, "unreachable"), RequestState.InProgress, "b/cpu:0", 2, T0);
        var asks = core.TakeEffects().OfType<AskRunner>().ToDictionary(a => a.Request.Ticket.RequestId);

        core.RunnerAnswered(asks["gone"], new RunnerAnswer(RunnerAnswerKind.Gone), T0);
        core.RunnerAnswered(asks["unreachable"], new RunnerAnswer(RunnerAnswerKind.Unreachable, "silo down"), T0);

        var requeued = core.TakeEffects().OfType<NotifyRequeued>().ToDictionary(r => r.RequestId);
        Assert.Equal("Runner a/cpu:0 no longer had the request; retrying (attempt 1 of 3 failed).", requeued["gone"].Reason);
        Assert.Equal("Runner b/cpu:0 was lost (silo down); retrying (attempt 2 of 3 failed).", requeued["unreachable"].Reason);
        Assert.Equal(2, core.Snapshot().Queued);
    }

    [Fact]
    public void The_declared_hint_applies_from_the_first_request_and_to_resumed_ones()
    {
        var core = NewCore();
        core.Declare(new AppRouting("model", 0));

        Assert.Equal("m1", core.Enqueue(Input("first", """{"model":"m1"}"""), T0).DeclaredHint);
        Assert.True(core.Resume(Input("resumed", """{"model":"m2"}"""), RequestState.Queued, null, 0, T0));
        Join(core, "a/cpu:0", capacity: 2, hints: ["m2"]);

        var sent = core.TakeEffects().OfType<SendToRunner>().ToDictionary(s => s.Sent.Ticket.RequestId);
        Assert.Equal("m2", sent["resumed"].Sent.Ticket.Request.Hint);
        Assert.True(sent["resumed"].HintHit);
        Assert.Equal("m1", sent["first"].Sent.Ticket.Request.Hint);
    }
}
