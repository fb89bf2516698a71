using FalHints.Benchmarks.Simulation;

namespace FalHints.Tests.Simulation;

public sealed class HostTierTests
{
    [Fact]
    public void The_host_tier_keeps_its_budget_dropping_the_least_recently_kept_first()
    {
        var tier = new HostTier(budgetBytes: 3);
        foreach (var model in new[] { "a", "b", "c", "d" })
        {
            tier.Keep(model, 1);
        }

        Assert.Equal(["d", "c", "b"], tier.Models);
        Assert.Equal(3, tier.BytesUsed);

        tier.Keep("big", 4);
        Assert.False(tier.Contains("big"));
        Assert.Equal(3, tier.BytesUsed);

        tier.Keep("e", 2);
        Assert.Equal(["e", "d"], tier.Models);
        Assert.Equal(3, tier.BytesUsed);
    }

    [Fact]
    public void A_promotion_takes_the_model_out_of_the_tier()
    {
        var tier = new HostTier(budgetBytes: 4);
        tier.Keep("a", 2);
        tier.Keep("b", 2);

        Assert.True(tier.Take("a"));
        Assert.False(tier.Take("a"));
        Assert.Equal(["b"], tier.Models);
        Assert.Equal(2, tier.BytesUsed);
    }

    [Fact]
    public void Without_a_budget_nothing_is_kept()
    {
        var tier = new HostTier(budgetBytes: 0);
        tier.Keep("a", 1);

        Assert.Empty(tier.Models);
        Assert.False(tier.Take("a"));
    }
}
