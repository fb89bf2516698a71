using FalHints.Client.Contracts;
using FalHints.Router.Hints;
using FalHints.Router.Placement;
using FalHints.Router.Queue;
using static FalHints.Tests.Support.Runners;

namespace FalHints.Tests.Placement;

/// <summary>Each peer's distinctive behaviour, as its source code has it.</summary>
public sealed class PeerPolicyTests
{
    [Fact]
    public void Fal_as_documented_takes_a_free_holder_else_any_free_runner_and_never_waits_for_a_busy_holder()
    {
        var policy = new FalDocumentedPolicy(new SeededRandom(3));
        var index = new HintIndex().With("a", inFlight: 1, hints: ["flux"]).With("b", hints: ["flux"]).With("c");

        Assert.Equal("b", policy.Decide(index, Ticket("flux"))!.Value.RunnerId);

        index.MarkDispatched("b", null);
        Assert.Equal("c", policy.Decide(index, Ticket("flux"))!.Value.RunnerId);
    }

    [Fact]
    public void Ray_up_to_2_43_queues_at_a_busy_holder_below_max_ongoing_requests_rather_than_load_elsewhere()
    {
        var index = new HintIndex().With("holder", inFlight: 3, hints: ["flux"]).With("empty");

        var placed = new RayServe243Policy(new SeededRandom(1)).Decide(index, Ticket("flux"));

        Assert.Equal("holder", placed!.Value.RunnerId);
    }

    [Fact]
    public void Ray_up_to_2_43_keeps_trying_only_holders_for_its_window_then_goes_to_the_fewest_models_replica()
    {
        var dispatcher = new Dispatcher(new RayServe243Policy(new SeededRandom(1)), DispatcherOptions.Default);
        dispatcher.Index.With("holder", inFlight: RayServeRouter.MaxOngoingRequests, hints: ["flux"]).With("empty");
        dispatcher.Enqueue(Ticket("flux", "r", at: T0));

        Assert.Empty(dispatcher.Pump(T0));
        Assert.NotNull(dispatcher.NextWake);
        Assert.Empty(dispatcher.Pump(T0.AddMilliseconds(900)));

        // The window is at most 2 s; the backoff at most 1 s.
        var placed = Assert.Single(dispatcher.Pump(T0.AddSeconds(3)));
        Assert.Equal(("empty", false), (placed.RunnerId, placed.HintHit));
    }

    [Fact]
    public void Ray_from_2_44_tries_the_holders_once_then_the_fewest_models_replica_at_once()
    {
        var dispatcher = new Dispatcher(new RayServePolicy(new SeededRandom(1)), DispatcherOptions.Default);
        dispatcher.Index.With("holder", inFlight: RayServeRouter.MaxOngoingRequests, hints: ["flux"]).With("empty");
        dispatcher.Enqueue(Ticket("flux", "r", at: T0));

        var placed = Assert.Single(dispatcher.Pump(T0));

        Assert.Equal(("empty", false), (placed.RunnerId, placed.HintHit));
    }

    [Fact]
    public void Ray_fulfils_the_oldest_pending_request_for_the_model_a_replica_was_found_for()
    {
        var dispatcher = new Dispatcher(new RayServe243Policy(new SeededRandom(1)), DispatcherOptions.Default with { MaxQueueLength = 10 });
        dispatcher.Index.With("holder", capacity: 1, hints: ["flux"]);
        dispatcher.Enqueue(Ticket("flux", "first", at: T0));
        dispatcher.Enqueue(Ticket("flux", "second", at: T0.AddMilliseconds(1)));

        var placed = dispatcher.Pump(T0.AddMilliseconds(1));

        Assert.Equal(["first", "second"], placed.Select(d => d.Ticket.RequestId));
        Assert.All(placed, d => Assert.Equal("holder", d.RunnerId));
    }

    [Fact]
    public void ModelMesh_queues_at_a_busy_copy_and_places_a_new_copy_only_when_the_copy_refuses()
    {
        var policy = new ModelMeshPolicy(new SeededRandom(1));
        var index = new HintIndex().With("copy", hints: ["flux"]).With("empty");
        index.MarkDispatched("copy", "flux");

        Assert.Equal("copy", policy.Decide(index, Ticket("flux"))!.Value.RunnerId);

        for (var i = 1; i < ModelMeshPolicy.CopyLimit(index.Find("copy")!); i++)
        {
            index.MarkDispatched("copy", "flux");
        }

        Assert.Equal("empty", policy.Decide(index, Ticket("flux"))!.Value.RunnerId);
    }

    [Fact]
    public void ModelMesh_forwards_to_the_copy_with_fewest_requests_in_use()
    {
        var policy = new ModelMeshPolicy(new SeededRandom(1));
        var index = new HintIndex().With("busier", capacity: 4, hints: ["flux"]).With("quieter", capacity: 4, hints: ["flux"]);
        index.MarkDispatched("busier", "flux");
        index.MarkDispatched("busier", "flux");
        index.MarkDispatched("quieter", "flux");

        Assert.Equal("quieter", policy.Decide(index, Ticket("flux"))!.Value.RunnerId);
    }

    [Fact]
    public void Consistent_hashing_sends_a_hint_to_the_same_runner_and_spills_over_only_past_the_load_bound()
    {
        foreach (IPlacementPolicy policy in new IPlacementPolicy[] { new HaproxyConsistentHashPolicy(), new EnvoyConsistentHashPolicy(new SeededRandom(1)) })
        {
            var index = new HintIndex().With("s/cpu:0").With("s/cpu:1").With("s/cpu:2").With("s/cpu:3");
            var home = policy.Decide(index, Ticket("flux"))!.Value.RunnerId;
            Assert.Equal(home, policy.Decide(index, Ticket("flux"))!.Value.RunnerId);

            // Past its share of the load the hint's runner is skipped: here everything else is idle.
            index.MarkDispatched(home, "flux");
            index.MarkDispatched(home, "flux");
            var spilled = policy.Decide(index, Ticket("flux"))!.Value.RunnerId;
            Assert.NotEqual(home, spilled);
        }
    }

    [Fact]
    public void Consistent_hashing_queues_at_the_hint_s_runner_while_the_others_are_as_busy()
    {
        var policy = new HaproxyConsistentHashPolicy();
        var index = new HintIndex().With("s/cpu:0", inFlight: 1).With("s/cpu:1", inFlight: 1);
        var home = policy.Decide(new HintIndex().With("s/cpu:0").With("s/cpu:1"), Ticket("flux"))!.Value.RunnerId;

        var placed = policy.Decide(index, Ticket("flux"))!.Value;

        Assert.False(index.Find(placed.RunnerId)!.IsFree);
        Assert.Equal(int.MaxValue, policy.Admits(index.Find(home)!));
    }

    [Fact]
    public void Wait_for_holder_waits_for_a_busy_holder_that_frees_sooner_than_a_load_elsewhere()
    {
        var slowLoads = new CacheUsage(10, 100, 0, 1, 1, 0, MeanLoadMs: 800);
        var index = new HintIndex();
        index.Apply(Event("a", hints: ["flux"], cache: slowLoads, routing: new AppRouting(null, MeanInferenceMs: 100)), T0);
        index.Apply(Event("b", cache: slowLoads), T0);
        index.MarkDispatched("a", "flux");

        Assert.Null(new WaitForHolderPolicy().Decide(index, Ticket("flux")));
        Assert.Equal("b", new HintAffinityPolicy().Decide(index, Ticket("flux"))!.Value.RunnerId);
    }

    [Fact]
    public void Wait_for_holder_loads_a_model_nobody_holds_on_a_runner_keeping_it_in_host_memory_before_a_cold_one()
    {
        // a has room, b is full but has a host tier that keeps flux: a promotion there beats a load on a, as long as
        // what it evicts from b's device (x) is a copy another runner (c, busy) holds too.
        var room = new CacheUsage(0, 8L << 30, 0, 0, 1, 0, MeanLoadMs: 800);
        var tiered = new CacheUsage(8L << 30, 8L << 30, 0, 0, 1, 0, MeanLoadMs: 800, HostBudgetBytes: 16L << 30, Promotions: 1, MeanPromotionMs: 40);
        HintIndex Runners(bool warm, bool xElsewhere = true)
        {
            var index = new HintIndex();
            index.Apply(Event("a", cache: room), T0);
            index.Apply(Event("b", hints: ["x"], cache: tiered) with { Warm = warm ? ["flux"] : [] }, T0);
            index.Apply(Event("c", hints: [xElsewhere ? "x" : "y"], cache: room), T0);
            index.MarkDispatched("c", xElsewhere ? "x" : "y");
            return index;
        }

        Assert.Equal("b", new WaitForHolderPolicy().Decide(Runners(warm: true), Ticket("flux"))!.Value.RunnerId);
        Assert.Equal("a", new WaitForHolderPolicy().Decide(Runners(warm: false), Ticket("flux"))!.Value.RunnerId);

        // When x is b's only copy, the promotion would evict it: b goes among the cold runners, and a has room.
        Assert.Equal("a", new WaitForHolderPolicy().Decide(Runners(warm: true, xElsewhere: false), Ticket("flux"))!.Value.RunnerId);
    }

    [Fact]
    public void Wait_for_holder_copies_to_a_warm_runner_when_a_promotion_beats_waiting_for_the_busy_holder()
    {
        // As above, a is busy with flux and b is free: a cold load (800 ms) is worth less than waiting for a (about
        // 200 ms), but b keeps flux in host memory and a promotion there takes 50 ms.
        var slowLoads = new CacheUsage(10, 100, 0, 1, 1, 0, MeanLoadMs: 800, HostBudgetBytes: 200, Promotions: 1, MeanPromotionMs: 50);
        HintIndex Runners(bool warm)
        {
            var index = new HintIndex();
            index.Apply(Event("a", hints: ["flux"], cache: slowLoads, routing: new AppRouting(null, MeanInferenceMs: 100)), T0);
            index.Apply(Event("b", cache: slowLoads) with { Warm = warm ? ["flux"] : [] }, T0);
            index.MarkDispatched("a", "flux");
            return index;
        }

        Assert.Null(new WaitForHolderPolicy().Decide(Runners(warm: false), Ticket("flux")));
        Assert.Equal("b", new WaitForHolderPolicy().Decide(Runners(warm: true), Ticket("flux"))!.Value.RunnerId);

        // A warm copy that would evict costs as much as a load from storage: what it pushes out is as dear to bring back.
        var full = slowLoads with { BytesUsed = 100 };
        var index = new HintIndex();
        index.Apply(Event("a", hints: ["flux"], cache: slowLoads, routing: new AppRouting(null, MeanInferenceMs: 100)), T0);
        index.Apply(Event("b", hints: ["x"], cache: full) with { Warm = ["flux"] }, T0);
        index.MarkDispatched("a", "flux");
        Assert.Null(new WaitForHolderPolicy().Decide(index, Ticket("flux")));
    }

    [Fact]
    public void Wait_for_holder_charges_a_copy_to_a_runner_keeping_the_hint_warm_its_promotion_even_where_its_loads_from_storage_are_cheaper()
    {
        // c (busy) holds flux with one request waiting: 200 ms of backlog. a keeps flux warm and has room; its promotions have
        // taken 300 ms, its loads from storage 100 ms. b has no room and loads in 1 s. The cheapest copy costs 300 ms
        // (a's promotion), more than the backlog: no copy. (Charging a its load from storage, 100 ms, would make one.)
        var routing = new AppRouting(null, MeanInferenceMs: 100);
        Dispatcher Fleet(double promotionMs)
        {
            var dispatcher = new Dispatcher(new WaitForHolderPolicy(), DispatcherOptions.Default);
            dispatcher.Index.Apply(Event("c", hints: ["flux"], cache: new CacheUsage(10, 100, 0, 1, 1, 0, MeanLoadMs: 1000), routing: routing), T0);
            dispatcher.Index.MarkDispatched("c", "flux");
            dispatcher.Index.Apply(Event("a", hints: ["x"], cache: new CacheUsage(10, 100, 0, 1, 1, 0, MeanLoadMs: 100, HostBytesUsed: 10, HostBudgetBytes: 100, Promotions: 1, MeanPromotionMs: promotionMs), routing: routing) with { Warm = ["flux"] }, T0);
            dispatcher.Index.Apply(Event("b", hints: ["y"], cache: new CacheUsage(100, 100, 0, 1, 1, 0, MeanLoadMs: 1000), routing: routing), T0);
            dispatcher.Enqueue(Ticket("flux", "r0", at: T0));
            return dispatcher;
        }

        var dear = Fleet(promotionMs: 300);
        Assert.Empty(dear.Pump(T0));
        Assert.Empty(dear.Prewarms);

        // A 50 ms promotion beats the backlog: a copies flux in the background.
        var cheap = Fleet(promotionMs: 50);
        Assert.Empty(cheap.Pump(T0));
        Assert.Equal(new PrewarmChoice("flux", "a"), Assert.Single(cheap.Prewarms));
    }

    [Fact]
    public void Wait_for_holder_counts_only_the_holders_still_serving_in_a_backlog()
    {
        // a (busy, 100 ms inference) and d (draining) hold flux; three requests wait; b is free with room and loads in 250 ms.
        // The backlog is a's 100 ms, then 3 x 100 ms on a alone: 400 ms, over a load, so b copies flux. (Sharing a's
        // inference time with the draining d as well made it 250 ms, no longer than the load, and no copy.)
        var cache = new CacheUsage(10, 100, 0, 1, 1, 0, MeanLoadMs: 250);
        var routing = new AppRouting(null, MeanInferenceMs: 100);
        var dispatcher = new Dispatcher(new WaitForHolderPolicy(), DispatcherOptions.Default);
        dispatcher.Index.Apply(Event("a", hints: ["flux"], cache: cache, routing: routing), T0);
        dispatcher.Index.MarkDispatched("a", "flux");
        dispatcher.Index.Apply(Event("d", kind: HintsEventKind.Draining, hints: ["flux"], cache: cache, routing: routing), T0);
        dispatcher.Index.Apply(Event("b", cache: cache, routing: routing), T0);
        for (var i = 0; i < 3; i++)
        {
            dispatcher.Enqueue(Ticket("flux", $"r{i}", at: T0.AddMilliseconds(i)));
        }

        Assert.Empty(dispatcher.Pump(T0));
        Assert.Equal(new PrewarmChoice("flux", "b"), Assert.Single(dispatcher.Prewarms));
    }

    [Fact]
    public void Wait_for_holder_loads_a_copy_once_the_backlog_outlasts_a_load()
    {
        var fastLoads = new CacheUsage(10, 100, 0, 1, 1, 0, MeanLoadMs: 250);
        var index = new HintIndex();
        index.Apply(Event("a", hints: ["flux"], cache: fastLoads, routing: new AppRouting(null, MeanInferenceMs: 100)), T0);
        index.Apply(Event("b", cache: fastLoads), T0);
        index.MarkDispatched("a", "flux");
        var backlog = Enumerable.Range(0, 3).Select(i => Ticket("flux", $"r{i}", at: T0.AddMilliseconds(i))).ToArray();

        var placed = new WaitForHolderPolicy().Decide(index, backlog);

        Assert.Equal(("r0", "b"), (placed!.Value.Ticket.RequestId, placed.Value.RunnerId));
    }

    [Fact]
    public void Wait_for_holder_loads_the_extra_copy_in_the_background_and_each_request_takes_whichever_holder_frees_first()
    {
        var fastLoads = new CacheUsage(10, 100, 0, 1, 1, 0, MeanLoadMs: 250);
        var dispatcher = new Dispatcher(new WaitForHolderPolicy(), DispatcherOptions.Default);
        dispatcher.Index.Apply(Event("a", hints: ["flux"], cache: fastLoads, routing: new AppRouting(null, MeanInferenceMs: 100)), T0);
        dispatcher.Index.Apply(Event("b", cache: fastLoads), T0);
        dispatcher.Index.MarkDispatched("a", "flux");
        for (var i = 0; i < 3; i++)
        {
            dispatcher.Enqueue(Ticket("flux", $"r{i}", at: T0.AddMilliseconds(i)));
        }

        // No request pays for the copy: all wait, and b loads flux meanwhile.
        Assert.Empty(dispatcher.Pump(T0));
        Assert.Equal(new PrewarmChoice("flux", "b"), Assert.Single(dispatcher.Prewarms));

        // The holder frees first and takes the oldest; then the new copy is ready and takes the next.
        dispatcher.Index.MarkCompleted("a", "flux");
        Assert.Equal(("r0", "a", true), Single(dispatcher.Pump(T0.AddMilliseconds(100))));
        dispatcher.Index.Apply(Event("b", hints: ["flux"], cache: fastLoads), T0.AddMilliseconds(250));
        dispatcher.PrewarmDone(new PrewarmChoice("flux", "b"));
        Assert.Equal(("r1", "b", true), Single(dispatcher.Pump(T0.AddMilliseconds(250))));
    }

    [Fact]
    public void Wait_for_holder_loads_a_model_nobody_holds_where_the_load_evicts_no_only_copy()
    {
        var full = new CacheUsage(8, 8, 0, 0, 1, 0, MeanLoadMs: 250);
        var index = new HintIndex();
        index.Apply(Event("only", hints: ["x"], cache: full), T0);
        index.Apply(Event("spare", hints: ["y"], cache: full), T0);
        index.Apply(Event("other", hints: ["y"], cache: full), T0);
        index.MarkDispatched("other", "y");

        Assert.Equal("spare", new WaitForHolderPolicy().Decide(index, Ticket("new"))!.Value.RunnerId);
        Assert.Equal("only", new WaitForHolderPolicy().Decide(new HintIndex().With("only", hints: ["x"]).With("spare", hints: ["y", "z"]), Ticket("new"))!.Value.RunnerId);
    }

    [Fact]
    public void Wait_for_holder_under_overload_loads_a_model_nobody_holds_where_no_only_copy_is_lost_before_serving_held_requests()
    {
        // Full caches: "tail" holds the only copy of x, "dup" a copy of y that "other" (busy) holds too.
        var full = new CacheUsage(8, 8, 0, 0, 1, 0, MeanLoadMs: 250);
        var index = new HintIndex();
        index.Apply(Event("tail", hints: ["x"], cache: full, routing: new AppRouting(null, MeanInferenceMs: 100)), T0);
        index.Apply(Event("dup", hints: ["y"], cache: full, routing: new AppRouting(null, MeanInferenceMs: 100)), T0);
        index.Apply(Event("other", hints: ["y"], cache: full, routing: new AppRouting(null, MeanInferenceMs: 100)), T0);
        index.MarkDispatched("other", "y");
        RequestTicket[] Queue(int held, bool unhinted = false) =>
        [
            .. Enumerable.Range(0, held).Select(i => Ticket(i % 4 == 0 ? "x" : "y", $"held{i}", at: T0)),
            .. unhinted ? [Ticket(null, "blind", at: T0)] : Array.Empty<RequestTicket>(),
            Ticket("new", "new", at: T0.AddMilliseconds(1)),
        ];

        // 50 requests held by the runners are 1.7 s of work per runner, over four loads' worth (WaitForHolderPolicy.OverloadLoads),
        // and the request for "new" has waited longer than a load: it loads where only a spare copy of y goes, ahead of the
        // older requests those runners could serve, rather than waiting for "tail" to run out of work and evict x.
        var overloaded = new WaitForHolderPolicy().Decide(index, T0.AddSeconds(2), Queue(50));
        Assert.Equal(("new", "dup"), (overloaded!.Value.Ticket.RequestId, overloaded.Value.RunnerId));

        // Below that backlog, or with requests without a hint waiting, the runners serve the oldest requests they hold first.
        Assert.Equal("held0", new WaitForHolderPolicy().Decide(index, T0.AddSeconds(2), Queue(8))!.Value.Ticket.RequestId);
        Assert.Equal("held0", new WaitForHolderPolicy().Decide(index, T0.AddSeconds(2), Queue(50, unhinted: true))!.Value.Ticket.RequestId);

        // Nor before the request has waited as long as a load.
        Assert.Equal("held0", new WaitForHolderPolicy().Decide(index, T0.AddMilliseconds(100), Queue(50))!.Value.Ticket.RequestId);
    }

    [Fact]
    public void Wait_for_holder_under_overload_copies_the_hint_with_the_longest_backlog_and_below_it_the_hint_waiting_longest()
    {
        // Loads take 1 s, inference 100 ms. Two busy runners hold "hot", one busy runner holds "late", and a free runner
        // holds nothing anyone waits for. The 20 requests for "late" came first (2 s for its one copy, more than a load).
        var cache = new CacheUsage(10, 100, 0, 1, 1, 0, MeanLoadMs: 1000);
        var routing = new AppRouting(null, MeanInferenceMs: 100);
        Dispatcher Fleet(int hotWaiting)
        {
            var dispatcher = new Dispatcher(new WaitForHolderPolicy(), DispatcherOptions.Default);
            foreach (var (runner, hint) in new[] { ("hot0", "hot"), ("hot1", "hot"), ("late", "late") })
            {
                dispatcher.Index.Apply(Event(runner, hints: [hint], cache: cache, routing: routing), T0);
                dispatcher.Index.MarkDispatched(runner, hint);
            }

            dispatcher.Index.Apply(Event("free", hints: ["z"], cache: cache, routing: routing), T0);
            for (var i = 0; i < 20; i++)
            {
                dispatcher.Enqueue(Ticket("late", $"late-{i}", at: T0.AddMilliseconds(i)));
            }

            for (var i = 0; i < hotWaiting; i++)
            {
                dispatcher.Enqueue(Ticket("hot", $"hot-{i}", at: T0.AddSeconds(1).AddMilliseconds(i)));
            }

            return dispatcher;
        }

        // 80 waiting (2 s per runner slot) is not overload: the hint whose oldest request waits longest gets the copy,
        // though "hot" (60 waiting for two copies, 3 s) has the longer backlog.
        var loaded = Fleet(hotWaiting: 60);
        Assert.Empty(loaded.Pump(T0.AddSeconds(2)));
        Assert.Equal(new PrewarmChoice("late", "free"), Assert.Single(loaded.Prewarms));

        // 320 waiting (8 s per slot, over four loads' worth) is: the hint with the longest backlog gets it ("hot", 15 s).
        var overloaded = Fleet(hotWaiting: 300);
        Assert.Empty(overloaded.Pump(T0.AddSeconds(2)));
        Assert.Equal(new PrewarmChoice("hot", "free"), Assert.Single(overloaded.Prewarms));
    }

    [Fact]
    public void ModelMesh_loads_a_copy_in_the_background_once_a_model_passes_2000_requests_per_minute_at_its_copy()
    {
        var dispatcher = new Dispatcher(new ModelMeshPolicy(new SeededRandom(1)), DispatcherOptions.Default);
        dispatcher.Index.With("copy", hints: ["flux"]).With("b").With("c");

        // 400 requests in 8 s at the one copy: 2,400 per minute over the 10 s rate check.
        for (var i = 0; i < 400; i++)
        {
            var at = T0.AddMilliseconds(20 * i);
            dispatcher.Enqueue(Ticket("flux", $"r{i}", at: at));
            var placed = Assert.Single(dispatcher.Pump(at));
            Assert.Equal("copy", placed.RunnerId);
            dispatcher.Complete(placed.Ticket.RequestId, placed.RunnerId);
            Assert.Empty(dispatcher.Prewarms);
        }

        dispatcher.Pump(T0.AddSeconds(10));

        var copy = Assert.Single(dispatcher.Prewarms);
        Assert.Equal("flux", copy.Hint);
        Assert.NotEqual("copy", copy.RunnerId);
    }

    [Fact]
    public void Wait_for_holder_sends_an_unhinted_request_to_a_free_runner_at_once()
    {
        var index = new HintIndex().With("a", inFlight: 1, hints: ["flux"]).With("b", hints: ["sdxl"]);

        Assert.Equal("b", new WaitForHolderPolicy().Decide(index, Ticket(null))!.Value.RunnerId);
    }

    private static (string RequestId, string RunnerId, bool HintHit) Single(IReadOnlyList<Dispatch> dispatches)
    {
        var dispatch = Assert.Single(dispatches);
        return (dispatch.Ticket.RequestId, dispatch.RunnerId, dispatch.HintHit);
    }

    [Fact]
    public void Every_built_in_policy_is_registered_under_its_own_name()
    {
        foreach (var name in PlacementPolicies.Names)
        {
            Assert.Equal(name, PlacementPolicies.Create(name, new SeededRandom(1)).Name);
        }
    }
}
