using FalHints.Client.Contracts;
using FalHints.Router.Hints;
using FalHints.Router.Placement;
using FalHints.Router.Queue;
using FalHints.Tests.Support;
using static FalHints.Tests.Support.Runners;

namespace FalHints.Tests.Placement;

public sealed class HintAffinityPolicyTests
{
    private readonly HintAffinityPolicy _policy = new();

    /// <summary>The runner the policy sends a lone request to, and whether that runner holds one of its hints (null: none).</summary>
    private (string? RunnerId, bool HintHit) Choose(string? hint, HintIndex index, params string[] moreHints)
    {
        var ticket = Ticket(hint, moreHints: moreHints);
        return _policy.Decide(index, ticket) is { } placement
            ? (placement.RunnerId, RequestHints.Of(ticket).Any(index.Find(placement.RunnerId)!.Holds))
            : (null, false);
    }

    [Fact]
    public void Placement_prefers_free_runner_holding_the_hint()
    {
        var index = new HintIndex().With("a").With("b", hints: ["sdxl", "flux"]).With("c", hints: ["sdxl"]);

        Assert.Equal(("b", true), Choose("flux", index));
    }

    [Fact]
    public void Hint_match_is_exact_ordinal_and_case_sensitive()
    {
        var index = new HintIndex().With("a", hints: ["Flux"]).With("b", hints: ["flux-schnell"]).With("c", hints: ["flux "]).With("d", hints: ["ﬂux"]);

        Assert.False(Choose("flux", index).HintHit);
    }

    [Fact]
    public void Among_matching_runners_the_least_loaded_wins()
    {
        var index = new HintIndex().With("a", inFlight: 1, capacity: 2, hints: ["flux"]).With("b", inFlight: 0, capacity: 2, hints: ["flux"]);

        Assert.Equal("b", Choose("flux", index).RunnerId);
    }

    [Fact]
    public void Among_equally_loaded_matching_runners_the_most_recent_user_of_the_hint_wins()
    {
        var index = new HintIndex().With("a", capacity: 2, hints: ["flux"]).With("b", capacity: 2, hints: ["flux"]);
        index.MarkDispatched("b", "flux");
        index.MarkCompleted("b", "flux");

        Assert.Equal("b", Choose("flux", index).RunnerId);

        index.MarkDispatched("a", "flux");
        index.MarkCompleted("a", "flux");
        Assert.Equal("a", Choose("flux", index).RunnerId);
    }

    [Fact]
    public void Busy_matching_runner_does_not_block_a_free_one()
    {
        var index = new HintIndex().With("a", inFlight: 1, hints: ["flux"]).With("b", hints: ["sdxl"]);

        Assert.Equal(("b", false), Choose("flux", index));
    }

    [Fact]
    public void Without_a_match_an_empty_runner_is_preferred_over_one_holding_models()
    {
        var index = new HintIndex().With("a", hints: ["sdxl"]).With("b").With("c", hints: ["sd15", "sdxl"]);

        Assert.Equal(("b", false), Choose("flux", index));
    }

    [Fact]
    public void Without_a_match_the_runner_holding_fewest_hints_is_taken()
    {
        var index = new HintIndex().With("a", hints: ["x", "y"]).With("b", hints: ["z"]);

        Assert.Equal("b", Choose("flux", index).RunnerId);
    }

    [Fact]
    public void Without_a_match_among_runners_holding_as_many_hints_the_least_recently_used_is_repurposed()
    {
        var index = new HintIndex().With("a", hints: ["x"]).With("b", hints: ["y"]);
        index.MarkDispatched("a", "x");
        index.MarkCompleted("a", "x");

        Assert.Equal("b", Choose("flux", index).RunnerId);
    }

    [Fact]
    public void Request_without_hint_goes_to_any_free_runner()
    {
        var index = new HintIndex().With("a", inFlight: 1).With("b", hints: ["flux"]);

        Assert.Equal(("b", false), Choose(null, index));
    }

    [Fact]
    public void No_free_runner_means_no_decision()
    {
        Assert.Null(Choose("flux", new HintIndex().With("a", inFlight: 1, hints: ["flux"]).With("b", draining: true)).RunnerId);
        Assert.Null(Choose("flux", new HintIndex()).RunnerId);
    }

    [Fact]
    public void Draining_runner_gets_no_work_even_when_it_holds_the_hint()
    {
        var index = new HintIndex().With("a", draining: true, hints: ["flux"]).With("b");

        Assert.Equal("b", Choose("flux", index).RunnerId);
    }

    [Fact]
    public void A_runner_loading_the_hint_counts_as_holding_it()
    {
        var index = new HintIndex().With("a");
        index.Apply(Event("b", loading: ["flux"]), T0);

        Assert.Equal(("b", true), Choose("flux", index));
    }

    [Fact]
    public void Ordered_hints_prefer_the_runner_holding_the_most_specific_one()
    {
        var index = new HintIndex().With("a", hints: ["base-model"]).With("b", hints: ["user-lora"]);

        Assert.Equal("b", Choose("user-lora", index, "base-model").RunnerId);
        Assert.Equal("a", Choose("other-lora", index, "base-model").RunnerId);
        Assert.True(Choose("other-lora", index, "base-model").HintHit);
    }

    /// <summary>Runs <paramref name="hints"/> one after another through <paramref name="dispatcher"/>, each finishing before the next: the policy's recent demand.</summary>
    private static void Serve(Dispatcher dispatcher, params string?[] hints)
    {
        foreach (var hint in hints)
        {
            dispatcher.Enqueue(Ticket(hint));
            var placed = Assert.Single(dispatcher.Pump(T0));
            dispatcher.Complete(placed.Ticket.RequestId, placed.RunnerId);
        }
    }

    [Fact]
    public void Without_a_free_holder_the_runner_whose_load_keeps_the_least_demand_from_its_models_is_repurposed()
    {
        var dispatcher = new Dispatcher(new HintAffinityPolicy(), DispatcherOptions.Default);
        dispatcher.Index.With("a", hints: ["hot"]).With("b", hints: ["cold"]);
        Serve(dispatcher, "hot", "hot", "hot", "cold");

        // b served its model last, so the least recently used runner is a; but a holds the only copy of what is in demand.
        dispatcher.Enqueue(Ticket("new", "r"));
        Assert.Equal("b", Assert.Single(dispatcher.Pump(T0)).RunnerId);
    }

    [Fact]
    public void A_request_without_a_hint_goes_to_the_free_runner_holding_the_most_demand()
    {
        var dispatcher = new Dispatcher(new HintAffinityPolicy(), DispatcherOptions.Default);
        dispatcher.Index.With("a", hints: ["hot"]).With("b", hints: ["cold"]).With("c");
        Serve(dispatcher, "hot", "hot", "cold");

        dispatcher.Enqueue(Ticket(null, "unhinted"));
        Assert.Equal("a", Assert.Single(dispatcher.Pump(T0)).RunnerId);
    }

    [Fact]
    public void With_nothing_waiting_a_copy_of_a_hint_in_demand_is_loaded_into_memory_a_free_runner_does_not_use()
    {
        var dispatcher = new Dispatcher(new HintAffinityPolicy(), DispatcherOptions.Default);
        dispatcher.Index.Apply(Event("a", hints: ["hot"], cache: Cache(used: 1, budget: 8)), T0);
        dispatcher.Index.Apply(Event("b", hints: ["cold"], cache: Cache(used: 8, budget: 8)), T0);
        dispatcher.Index.Apply(Event("c", cache: Cache(used: 0, budget: 8)), T0);
        dispatcher.Index.Apply(Event("d", hints: ["warm"], cache: Cache(used: 1, budget: 8)), T0);

        // hot is in demand (served by a while b and d are busy, so c is the only other free runner and stays free).
        dispatcher.Index.MarkDispatched("b", "cold");
        dispatcher.Index.MarkDispatched("d", "warm");
        Serve(dispatcher, "hot", "hot", "hot");
        Assert.Empty(dispatcher.Prewarms);
        dispatcher.Index.MarkCompleted("b", "cold");
        dispatcher.Index.MarkCompleted("d", "warm");

        // Nothing waits and every runner is free: b has no room, a holds hot already; c and d have room and serve no demand.
        Assert.Empty(dispatcher.Pump(T0));
        Assert.Equal([new PrewarmChoice("hot", "c"), new PrewarmChoice("hot", "d")], dispatcher.Prewarms);
    }

    [Fact]
    public void No_copy_is_loaded_on_the_last_free_runner()
    {
        var dispatcher = new Dispatcher(new HintAffinityPolicy(), DispatcherOptions.Default);
        dispatcher.Index.Apply(Event("a", hints: ["hot"], cache: Cache(used: 1, budget: 8)), T0);
        dispatcher.Index.Apply(Event("c", cache: Cache(used: 0, budget: 8)), T0);
        Serve(dispatcher, "hot", "hot");

        // While a runs something, c is the last free runner: it stays free for whatever arrives.
        dispatcher.Index.MarkDispatched("a", "other");
        dispatcher.Pump(T0);
        Assert.Empty(dispatcher.Prewarms);

        dispatcher.Index.MarkCompleted("a", "other");
        dispatcher.Pump(T0);
        Assert.Equal(new PrewarmChoice("hot", "c"), Assert.Single(dispatcher.Prewarms));
    }

    private static CacheUsage Cache(long used, long budget) => new(used << 30, budget << 30, 0, 0, 1, 0, MeanLoadMs: 500);
}
