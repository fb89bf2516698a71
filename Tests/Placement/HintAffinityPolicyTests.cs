using System.Collections.Immutable;
using FalHints.Router.Placement;

namespace FalHints.Tests.Placement;

public sealed class HintAffinityPolicyTests
{
    private readonly HintAffinityPolicy _policy = new();

    private static RunnerView Runner(string id, int inFlight = 0, int capacity = 1, bool draining = false, params string[] hints) =>
        new(id, [.. hints], inFlight, capacity, draining);

    [Fact]
    public void Placement_prefers_free_runner_holding_the_hint()
    {
        var decision = _policy.Choose("flux", [Runner("a"), Runner("b", hints: ["sdxl", "flux"]), Runner("c", hints: ["sdxl"])]);

        Assert.Equal(new PlacementDecision("b", HintHit: true), decision);
    }

    [Fact]
    public void Hint_match_is_exact_ordinal_and_case_sensitive()
    {
        RunnerView[] runners = [Runner("a", hints: ["Flux"]), Runner("b", hints: ["flux-schnell"]), Runner("c", hints: ["flux "])];

        var decision = _policy.Choose("flux", runners);

        Assert.False(decision!.Value.HintHit);
    }

    [Fact]
    public void Among_matching_runners_the_least_loaded_wins()
    {
        var decision = _policy.Choose("flux", [Runner("a", inFlight: 1, capacity: 2, hints: ["flux"]), Runner("b", inFlight: 0, capacity: 2, hints: ["flux"])]);

        Assert.Equal("b", decision!.Value.RunnerId);
    }

    [Fact]
    public void Busy_matching_runner_does_not_block_a_free_one()
    {
        var decision = _policy.Choose("flux", [Runner("a", inFlight: 1, hints: ["flux"]), Runner("b", hints: ["sdxl"])]);

        Assert.Equal(new PlacementDecision("b", HintHit: false), decision);
    }

    [Fact]
    public void Without_a_match_an_empty_runner_is_preferred_over_one_holding_models()
    {
        var decision = _policy.Choose("flux", [Runner("a", hints: ["sdxl"]), Runner("b"), Runner("c", hints: ["sd15", "sdxl"])]);

        Assert.Equal(new PlacementDecision("b", HintHit: false), decision);
    }

    [Fact]
    public void Without_a_match_the_runner_holding_fewest_hints_is_taken()
    {
        var decision = _policy.Choose("flux", [Runner("a", hints: ["x", "y"]), Runner("b", hints: ["z"])]);

        Assert.Equal("b", decision!.Value.RunnerId);
    }

    [Fact]
    public void Request_without_hint_goes_to_any_free_runner()
    {
        var decision = _policy.Choose(null, [Runner("a", inFlight: 1), Runner("b", hints: ["flux"])]);

        Assert.Equal(new PlacementDecision("b", HintHit: false), decision);
    }

    [Fact]
    public void No_free_runner_means_no_decision()
    {
        Assert.Null(_policy.Choose("flux", [Runner("a", inFlight: 1, hints: ["flux"]), Runner("b", draining: true)]));
        Assert.Null(_policy.Choose("flux", ImmutableArray<RunnerView>.Empty));
    }

    [Fact]
    public void Draining_runner_gets_no_work_even_when_it_holds_the_hint()
    {
        var decision = _policy.Choose("flux", [Runner("a", draining: true, hints: ["flux"]), Runner("b")]);

        Assert.Equal("b", decision!.Value.RunnerId);
    }
}
