using FalHints.Client.Contracts;
using FalHints.Router.Hints;
using FalHints.Router.Placement;
using static FalHints.Tests.Support.Runners;

namespace FalHints.Tests.Placement;

public sealed class ReportedLoadCostTests
{
    [Fact]
    public void A_warm_hint_costs_the_runner_s_measured_promotion_and_a_cold_one_its_measured_load()
    {
        var index = new HintIndex();
        index.Apply(Event("a", hints: ["held"], cache: new CacheUsage(0, 8, 0, 0, 4, 0, MeanLoadMs: 900, Promotions: 2, MeanPromotionMs: 60)) with { Warm = ["warm"] }, T0);
        var cost = new ReportedLoadCost();
        cost.Observe(index);
        var a = index.Find("a")!;

        Assert.Equal((0.0, 60.0, 900.0), (cost.LoadMs(a, "held"), cost.LoadMs(a, "warm"), cost.LoadMs(a, "cold")));
    }

    [Fact]
    public void Without_its_own_measurements_a_runner_gets_the_fleet_s_then_a_stated_share_of_a_load()
    {
        var index = new HintIndex();
        index.Apply(Event("measured", cache: new CacheUsage(0, 8, 0, 0, 1, 0, MeanLoadMs: 1_000, Promotions: 3, MeanPromotionMs: 80)), T0);
        index.Apply(Event("fresh") with { Warm = ["m"] }, T0);
        var cost = new ReportedLoadCost();
        cost.Observe(index);

        Assert.Equal((80.0, 1_000.0), (cost.LoadMs(index.Find("fresh")!, "m"), cost.StoreLoadMs(index.Find("fresh")!)));

        var unmeasured = new HintIndex();
        unmeasured.Apply(Event("fresh") with { Warm = ["m"] }, T0);
        cost.Observe(unmeasured);
        Assert.Equal(ReportedLoadCost.UnknownPromotionShare * ReportedLoadCost.UnknownLoadMs, cost.LoadMs(unmeasured.Find("fresh")!, "m"), precision: 6);
    }
}
