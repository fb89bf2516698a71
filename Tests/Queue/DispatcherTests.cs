using FalHints.Client.Contracts;
using FalHints.Router.Placement;
using FalHints.Router.Queue;
using FalHints.Tests.Support;
using static FalHints.Tests.Support.Runners;

namespace FalHints.Tests.Queue;

public sealed class DispatcherTests
{
    private static readonly DispatcherOptions Options = new(HeadBypassLimit: 2, MaxQueueLength: 4, MaxAttempts: 3);

    private static Dispatcher NewDispatcher(IPlacementPolicy? policy = null) => new(policy ?? new HintAffinityPolicy(), Options);

    private static void Finish(Dispatcher dispatcher, Dispatch dispatch) => dispatcher.Complete(dispatch.Ticket.RequestId, dispatch.RunnerId);

    [Fact]
    public void Request_goes_at_once_to_a_free_runner_and_waits_only_when_none_is_free()
    {
        var dispatcher = NewDispatcher();
        dispatcher.Index.With("a");

        Assert.Null(dispatcher.Enqueue(Ticket("x", "r1")));
        var first = Assert.Single(dispatcher.Pump(T0));
        Assert.Null(dispatcher.Enqueue(Ticket("x", "r2")));

        Assert.Empty(dispatcher.Pump(T0));
        Assert.Equal(0, dispatcher.Queue.Position("r2"));
        Finish(dispatcher, first);
        Assert.Equal("r2", Assert.Single(dispatcher.Pump(T0)).Ticket.RequestId);
    }

    [Fact]
    public void A_freed_runner_takes_the_oldest_queued_request_whose_hint_it_holds()
    {
        var dispatcher = NewDispatcher();
        dispatcher.Index.With("a", hints: ["flux"]);
        dispatcher.Enqueue(Ticket("flux", "running"));
        var running = Assert.Single(dispatcher.Pump(T0));
        dispatcher.Enqueue(Ticket("sdxl", "head", at: T0.AddSeconds(1)));
        dispatcher.Enqueue(Ticket("flux", "older-flux", at: T0.AddSeconds(2)));
        dispatcher.Enqueue(Ticket("flux", "newer-flux", at: T0.AddSeconds(3)));

        Finish(dispatcher, running);
        var next = Assert.Single(dispatcher.Pump(T0.AddSeconds(4)));

        Assert.Equal(("older-flux", true), (next.Ticket.RequestId, next.HintHit));
        Assert.Equal(0, dispatcher.Queue.Position("head"));
    }

    [Fact]
    public void A_freed_runner_finds_a_request_it_holds_however_deep_in_the_queue_it_waits()
    {
        var dispatcher = new Dispatcher(new HintAffinityPolicy(), Options with { MaxQueueLength = 10_000 });
        dispatcher.Index.With("a", hints: ["flux"]);
        dispatcher.Enqueue(Ticket("flux", "running"));
        var running = Assert.Single(dispatcher.Pump(T0));
        for (var i = 0; i < 5_000; i++)
        {
            dispatcher.Enqueue(Ticket($"other-{i}", $"other-{i}", at: T0.AddMilliseconds(1 + i)));
        }

        dispatcher.Enqueue(Ticket("sdxl", "deep-low", RequestPriority.Low, at: T0.AddSeconds(1)));
        dispatcher.Enqueue(Ticket("flux", "deep", at: T0.AddSeconds(6)));

        Finish(dispatcher, running);
        var next = Assert.Single(dispatcher.Pump(T0.AddSeconds(7)));

        Assert.Equal(("deep", true), (next.Ticket.RequestId, next.HintHit));
        Assert.Equal(5_001, dispatcher.Queue.Count);
    }

    [Fact]
    public void The_queue_indexes_requests_by_each_of_their_hints_within_their_priority_class()
    {
        var queue = new RequestQueue();
        queue.Add(Ticket("flux", "low-flux", RequestPriority.Low, at: T0));
        queue.Add(Ticket("sdxl", "b", at: T0.AddSeconds(2), moreHints: ["flux"]));
        queue.Add(Ticket("flux", "a", at: T0.AddSeconds(1)));
        queue.Add(Ticket("flux", "tie", at: T0.AddSeconds(2)));

        Assert.Equal("a", queue.OldestInHeadClassWith("flux")!.RequestId);
        Assert.Equal("b", queue.OldestInHeadClassWith("sdxl")!.RequestId);
        Assert.True(queue.StartsBefore(queue.OldestInHeadClassWith("sdxl")!, Ticket("flux", "tie", at: T0.AddSeconds(2))));
        Assert.Null(queue.OldestInHeadClassWith("none"));

        queue.Remove("a");
        queue.Remove("b");
        Assert.Equal("tie", queue.OldestInHeadClassWith("flux")!.RequestId);
        Assert.Null(queue.OldestInHeadClassWith("sdxl"));

        // Once only low-priority requests wait, the low class is the head's class.
        queue.Remove("tie");
        Assert.Equal("low-flux", queue.OldestInHeadClassWith("flux")!.RequestId);
    }

    [Fact]
    public void The_head_is_passed_over_at_most_the_bypass_limit_then_takes_the_next_free_runner()
    {
        var dispatcher = new Dispatcher(new HintAffinityPolicy(), Options with { MaxQueueLength = 100 });
        dispatcher.Index.With("a", hints: ["flux"]);
        dispatcher.Enqueue(Ticket("flux", "running"));
        var running = Assert.Single(dispatcher.Pump(T0));
        dispatcher.Enqueue(Ticket("sdxl", "head", at: T0));
        for (var i = 0; i < 5; i++)
        {
            dispatcher.Enqueue(Ticket("flux", $"flux-{i}", at: T0.AddSeconds(1 + i)));
        }

        var started = new List<Dispatch>();
        for (var i = 0; i < 3; i++)
        {
            Finish(dispatcher, running);
            running = Assert.Single(dispatcher.Pump(T0.AddSeconds(10 + i)));
            started.Add(running);
        }

        Assert.Equal(["flux-0", "flux-1", "head"], started.Select(d => d.Ticket.RequestId));
        Assert.False(started[2].HintHit);
        Assert.Equal(0, dispatcher.HeadBypasses);
    }

    [Fact]
    public void Normal_priority_requests_start_before_low_ones_even_when_a_low_one_matches()
    {
        var dispatcher = NewDispatcher();
        dispatcher.Index.With("a", hints: ["flux"]);
        dispatcher.Enqueue(Ticket("flux", "running"));
        var running = Assert.Single(dispatcher.Pump(T0));
        dispatcher.Enqueue(Ticket("flux", "low", RequestPriority.Low, at: T0));
        dispatcher.Enqueue(Ticket("sdxl", "normal", at: T0.AddSeconds(1)));

        Assert.Equal((0, 1), (dispatcher.Queue.Position("normal"), dispatcher.Queue.Position("low")));
        Finish(dispatcher, running);
        Assert.Equal("normal", Assert.Single(dispatcher.Pump(T0.AddSeconds(2))).Ticket.RequestId);
    }

    [Fact]
    public void A_burst_for_one_hint_follows_the_first_dispatch_instead_of_all_missing()
    {
        var dispatcher = NewDispatcher();
        dispatcher.Index.With("a", capacity: 2).With("b", capacity: 2, hints: ["other"]);
        dispatcher.Enqueue(Ticket("flux", "one"));
        dispatcher.Enqueue(Ticket("flux", "two"));

        var dispatches = dispatcher.Pump(T0);

        Assert.Equal(["a", "a"], dispatches.Select(d => d.RunnerId));
        Assert.Equal([false, true], dispatches.Select(d => d.HintHit));
    }

    [Fact]
    public void A_full_queue_refuses_with_queue_full()
    {
        var dispatcher = NewDispatcher();
        for (var i = 0; i < Options.MaxQueueLength; i++)
        {
            Assert.Null(dispatcher.Enqueue(Ticket("x", $"r{i}")));
        }

        var error = dispatcher.Enqueue(Ticket("x", "one-too-many"));

        Assert.Equal(ErrorCodes.QueueFull, error!.Code);
        Assert.Null(dispatcher.Enqueue(Ticket("x", "resumed"), evenIfFull: true));
    }

    [Fact]
    public void Queued_requests_past_their_start_deadline_expire()
    {
        var dispatcher = NewDispatcher();
        dispatcher.Enqueue(Ticket("x", "patient"));
        dispatcher.Enqueue(Ticket("x", "hurried", startTimeout: TimeSpan.FromSeconds(5)));

        Assert.Empty(dispatcher.ExpireStartDeadlines(T0.AddSeconds(4)));
        Assert.Equal("hurried", Assert.Single(dispatcher.ExpireStartDeadlines(T0.AddSeconds(5))).RequestId);
        Assert.True(dispatcher.Queue.Contains("patient"));
    }

    [Fact]
    public void Requests_of_a_lost_runner_are_retried_at_their_place_until_attempts_run_out()
    {
        var dispatcher = NewDispatcher();
        dispatcher.Index.With("a").With("b", inFlight: 1);
        dispatcher.Enqueue(Ticket("x", "victim", at: T0));
        Assert.Equal("a", Assert.Single(dispatcher.Pump(T0)).RunnerId);
        dispatcher.Enqueue(Ticket("x", "later", at: T0.AddSeconds(1)));

        var lost = Assert.Single(dispatcher.RemoveRunner("a"));

        Assert.True(lost.Requeued);
        Assert.Equal(0, dispatcher.Queue.Position("victim"));
        Assert.Null(dispatcher.Index.Find("a"));
        dispatcher.Index.With("c");
        var retry = Assert.Single(dispatcher.Pump(T0.AddSeconds(2)));
        Assert.Equal(("victim", "c", 2), (retry.Ticket.RequestId, retry.RunnerId, retry.Attempt));
        Assert.Equal(1, dispatcher.Retries);

        Assert.True(Assert.Single(dispatcher.RemoveRunner("c")).Requeued);
        dispatcher.Index.With("d");
        Assert.Equal(3, Assert.Single(dispatcher.Pump(T0.AddSeconds(3))).Attempt);
        Assert.False(Assert.Single(dispatcher.RemoveRunner("d")).Requeued);
    }

    [Fact]
    public void A_caller_that_opted_out_of_retries_is_not_retried()
    {
        var dispatcher = NewDispatcher();
        dispatcher.Index.With("a");
        dispatcher.Enqueue(Ticket("x", "fragile", noRetry: true));
        dispatcher.Pump(T0);

        var lost = Assert.Single(dispatcher.RemoveRunner("a"));

        Assert.False(lost.Requeued);
        Assert.False(dispatcher.Knows("fragile"));
    }

    [Fact]
    public void Completion_from_a_runner_the_request_was_moved_away_from_is_ignored()
    {
        var dispatcher = NewDispatcher();
        dispatcher.Index.With("a").With("b");
        dispatcher.Enqueue(Ticket("x", "moved"));
        var first = Assert.Single(dispatcher.Pump(T0));
        dispatcher.RemoveRunner(first.RunnerId);
        var second = Assert.Single(dispatcher.Pump(T0));

        Assert.False(dispatcher.Complete("moved", first.RunnerId));
        Assert.True(dispatcher.Complete("moved", second.RunnerId));
    }

    [Fact]
    public void Adopted_request_occupies_its_runner()
    {
        var dispatcher = NewDispatcher();
        dispatcher.Index.With("a");

        dispatcher.Adopt(Ticket("x", "running-before-restart"), "a", attempt: 1, T0);
        dispatcher.Enqueue(Ticket("x", "new"));

        Assert.Empty(dispatcher.Pump(T0));
        Assert.True(dispatcher.Complete("running-before-restart", "a"));
        Assert.Single(dispatcher.Pump(T0));
    }

    [Fact]
    public void A_request_queued_again_after_it_started_has_no_start_deadline_any_more()
    {
        var dispatcher = NewDispatcher();

        dispatcher.Enqueue(Ticket("x", "resumed", startTimeout: TimeSpan.FromSeconds(1)), priorAttempts: 1);

        Assert.Empty(dispatcher.ExpireStartDeadlines(T0.AddHours(1)));
        Assert.True(dispatcher.Queue.Contains("resumed"));
    }

    [Fact]
    public void A_request_adopted_before_its_runner_is_heard_from_still_occupies_that_runner()
    {
        var dispatcher = NewDispatcher();

        dispatcher.Adopt(Ticket("x", "running"), "silo/cpu:0", attempt: 1, T0);
        Assert.False(dispatcher.Index.Find("silo/cpu:0")!.IsFree);
        dispatcher.Index.With("silo/cpu:0");
        dispatcher.Enqueue(Ticket("x", "new"));

        Assert.Empty(dispatcher.Pump(T0));
        Assert.True(dispatcher.Complete("running", "silo/cpu:0"));
        Assert.Equal("new", Assert.Single(dispatcher.Pump(T0)).Ticket.RequestId);
    }

    [Fact]
    public void Hint_blind_policy_ignores_what_runners_hold()
    {
        var dispatcher = NewDispatcher(new RoundRobinPolicy());
        dispatcher.Index.With("a", hints: ["flux"]).With("b");

        dispatcher.Enqueue(Ticket("flux", "one"));
        dispatcher.Enqueue(Ticket("flux", "two"));

        Assert.Equal(["a", "b"], dispatcher.Pump(T0).Select(d => d.RunnerId));
    }

    [Fact]
    public void Random_policy_takes_its_randomness_from_the_injected_source()
    {
        var dispatcher = NewDispatcher(new RandomPolicy(new ScriptedRandom(2, 0)));
        dispatcher.Index.With("a").With("b").With("c");
        dispatcher.Enqueue(Ticket(null, "one"));
        dispatcher.Enqueue(Ticket(null, "two"));

        Assert.Equal(["c", "a"], dispatcher.Pump(T0).Select(d => d.RunnerId));
    }

    [Fact]
    public void A_policy_choosing_a_full_runner_is_refused_with_a_message_naming_it()
    {
        var dispatcher = new Dispatcher(new AlwaysFirstRunner(), Options);
        dispatcher.Index.With("a", inFlight: 1);
        dispatcher.Enqueue(Ticket("x", "one"));

        var error = Assert.Throws<InvalidOperationException>(() => dispatcher.Pump(T0));

        Assert.Contains("always-first chose runner a for request one", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_policy_registered_by_name_is_created_from_the_catalog_without_touching_the_dispatcher()
    {
        var catalog = new PlacementPolicyCatalog([.. PlacementPolicies.BuiltIn, new PlacementPolicyRegistration("always-first", _ => new AlwaysFirstRunner())]);

        var dispatcher = new Dispatcher(catalog.Create("always-first", new SeededRandom(1)), Options);
        dispatcher.Index.With("b").With("a", hints: ["x"]);
        dispatcher.Enqueue(Ticket("x", "one"));

        Assert.Equal("a", Assert.Single(dispatcher.Pump(T0)).RunnerId);
        Assert.Contains("always-first", catalog.Names);
        Assert.Throws<ArgumentException>(() => catalog.Create("nobody", new SeededRandom(1)));
    }

    [Fact]
    public void A_prewarm_keeps_its_runner_busy_and_holding_the_hint_until_it_is_done()
    {
        var dispatcher = new Dispatcher(new PrewarmOnce("flux"), Options);
        dispatcher.Index.With("a").With("b");

        Assert.Empty(dispatcher.Pump(T0));
        var prewarm = Assert.Single(dispatcher.Prewarms);
        var runner = dispatcher.Index.Find(prewarm.RunnerId)!;
        Assert.Equal("flux", prewarm.Hint);
        Assert.False(runner.IsFree);
        Assert.Contains(runner, dispatcher.Index.Holding("flux"));

        // Nothing new is asked for while it loads; once done the runner is free, and holds the hint if it reports it.
        Assert.Empty(dispatcher.Pump(T0));
        Assert.Empty(dispatcher.Prewarms);
        Assert.True(dispatcher.PrewarmDone(prewarm));
        Assert.False(dispatcher.PrewarmDone(prewarm));
        Assert.True(runner.IsFree);
        Assert.DoesNotContain(runner, dispatcher.Index.Holding("flux"));
        Assert.Equal(1, dispatcher.PrewarmsStarted);
    }

    [Fact]
    public void A_prewarm_on_a_busy_runner_or_of_a_hint_it_holds_is_refused_with_a_message_naming_it()
    {
        var busy = new Dispatcher(new PrewarmOnce("flux", runner: "a"), Options);
        busy.Index.With("a", inFlight: 1).With("b");
        var holding = new Dispatcher(new PrewarmOnce("flux", runner: "a"), Options);
        holding.Index.With("a", hints: ["flux"]).With("b");

        Assert.Contains("runner a", Assert.Throws<InvalidOperationException>(() => busy.Pump(T0)).Message, StringComparison.Ordinal);
        Assert.Contains("flux", Assert.Throws<InvalidOperationException>(() => holding.Pump(T0)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void With_prewarms_off_the_policy_is_not_asked_for_any()
    {
        var policy = new PrewarmOnce("flux");
        var dispatcher = new Dispatcher(policy, Options) { PrewarmsEnabled = false };
        dispatcher.Index.With("a");

        dispatcher.Pump(T0);

        Assert.Empty(dispatcher.Prewarms);
        Assert.Equal(0, policy.Asked);
    }

    [Fact]
    public void A_request_held_back_until_its_copy_is_booked_starts_in_the_same_round()
    {
        var dispatcher = new Dispatcher(new PrewarmOnce("flux", holdBack: true), Options);
        dispatcher.Index.With("a").With("b");
        dispatcher.Enqueue(Ticket("sdxl", "r"));

        var placed = Assert.Single(dispatcher.Pump(T0));

        Assert.Equal("r", placed.Ticket.RequestId);
        Assert.NotEqual(Assert.Single(dispatcher.Prewarms).RunnerId, placed.RunnerId);
    }

    [Fact]
    public void Requests_and_prewarms_of_a_lost_runner_are_forgotten_with_it()
    {
        var dispatcher = new Dispatcher(new PrewarmOnce("flux"), Options);
        dispatcher.Index.With("a");
        dispatcher.Pump(T0);
        var prewarm = Assert.Single(dispatcher.Prewarms);

        dispatcher.RemoveRunner("a");

        Assert.False(dispatcher.PrewarmDone(prewarm));
        Assert.Empty(dispatcher.Index.Holding("flux"));
    }

    private sealed class ScriptedRandom(params int[] values) : IRandomSource
    {
        private int _next;

        public int Next(int maxExclusive) => values[_next++] % maxExclusive;
    }

    /// <summary>Sends the head to the runner first in id order, whether or not it can take it.</summary>
    private sealed class AlwaysFirstRunner : IPlacementPolicy
    {
        public string Name => "always-first";

        public PlacementChoice? Next(PlacementContext context) =>
            context.Queue.Head is { } head ? new PlacementChoice(head, context.Runners.All.Min(r => r.RunnerId)!) : null;
    }
}
