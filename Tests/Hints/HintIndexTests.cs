using FalHints.Client.Contracts;
using FalHints.Router.Hints;
using static FalHints.Tests.Support.Runners;

namespace FalHints.Tests.Hints;

public sealed class HintIndexTests
{
    [Fact]
    public void Applies_newer_events_and_ignores_duplicates_and_older_ones()
    {
        var index = new HintIndex();
        var first = Event("r", hints: ["a"]);
        var second = Event("r", hints: ["a", "b"]);

        Assert.True(index.Apply(second, T0));
        Assert.False(index.Apply(second, T0));
        Assert.False(index.Apply(first, T0));

        Assert.Equal<string>(["a", "b"], index.Find("r")!.Hints);
        Assert.Equal(["r"], index.Holding("b").Select(r => r.RunnerId));
    }

    [Fact]
    public void Each_event_replaces_the_report_whole_and_dispatches_stay_beside_it()
    {
        var index = new HintIndex();
        var first = Event("r", hints: ["a"], loading: ["b"]);
        index.Apply(first, T0);
        var runner = index.Find("r")!;
        Assert.Equal(RunnerReport.From(first), runner.Report);

        // A dispatch for a hint the runner did not report: the router's own record says it is about to hold it.
        index.MarkDispatched("r", "c");
        Assert.Equal(RunnerReport.From(first), runner.Report);
        Assert.True(runner.Holds("c"));
        Assert.False(runner.Reports("c"));
        Assert.Equal((1, 0), (runner.Dispatched, runner.Reported));

        // The next event replaces what was reported, "b" included, and leaves the router's record as it was.
        var second = Event("r", hints: ["a"]) with { InFlight = 1 };
        index.Apply(second, T0.AddSeconds(1));
        Assert.Equal(RunnerReport.From(second), runner.Report);
        Assert.Empty(runner.Loading);
        Assert.False(runner.Holds("b"));
        Assert.True(runner.Holds("c"));
        Assert.Equal((1, 1, T0.AddSeconds(1)), (runner.Dispatched, runner.Reported, runner.LastSeen));

        index.MarkCompleted("r", "c");
        Assert.False(runner.Holds("c"));
        Assert.Equal(0, runner.Dispatched);
        Assert.Equal(RunnerReport.From(second), runner.Report);
    }

    [Fact]
    public void Warm_list_and_tier_figures_are_stored_beside_the_hints_without_becoming_hints()
    {
        var index = new HintIndex();
        var cache = new CacheUsage(10, 100, 0, 1, 1, 1, 250, HostBytesUsed: 40, HostBudgetBytes: 400, Promotions: 2, Demotions: 3,
            MeanPromotionMs: 12, LoadBytesPerSecond: 1e9, PromotionBytesPerSecond: 2e10);

        index.Apply(Event("r", hints: ["a"], cache: cache) with { Warm = ["w", "v"] }, T0);

        var runner = index.Find("r")!;
        Assert.Equal<string>(["w", "v"], runner.Warm);
        Assert.Equal(cache, runner.Cache);
        Assert.Empty(index.Holding("w"));
        Assert.False(runner.Holds("w"));
        Assert.Equal<string>(["w", "v"], index.Snapshot().Single().Warm);

        // An event from a runner that reports no host tier (older, or a CPU runner) clears the list.
        index.Apply(Event("r", hints: ["a"]), T0);
        Assert.Empty(index.Find("r")!.Warm);
    }

    [Fact]
    public void Events_lost_in_between_do_not_stop_a_newer_one_from_applying()
    {
        var index = new HintIndex();
        var first = Event("r", hints: ["a"]);
        var lost = Event("r", hints: ["a", "b"]);
        var third = Event("r", hints: ["c"]);

        Assert.True(index.Apply(first, T0));
        Assert.True(lost.Sequence < third.Sequence);
        Assert.True(index.Apply(third, T0));

        Assert.Equal<string>(["c"], index.Find("r")!.Hints);
        Assert.Empty(index.Holding("a"));
        Assert.False(index.Apply(lost, T0));
        Assert.Empty(index.Holding("b"));
    }

    [Fact]
    public void Suspected_runners_take_no_work_until_a_direct_reply_confirms_them()
    {
        var index = new HintIndex().With("a/cpu:0", hints: "m").With("a/cpu:1", hints: "m").With("b/cpu:0", hints: "m");

        Assert.Equal<string>(["a/cpu:0", "a/cpu:1"], [.. index.Suspect("a").Order(StringComparer.Ordinal)]);
        Assert.Equal(["b/cpu:0"], index.Free.Select(r => r.RunnerId));
        Assert.Empty(index.Suspect("a"));

        // A heartbeat on the stream may be stale; only the runner's own answer frees it again.
        index.Apply(Event("a/cpu:0", hints: ["m"]), T0, current: false);
        Assert.DoesNotContain(index.Free, r => r.RunnerId == "a/cpu:0");
        index.Apply(Event("a/cpu:0", hints: ["m"]), T0, current: true);
        Assert.Equal<string>(["a/cpu:0", "b/cpu:0"], [.. index.Free.Select(r => r.RunnerId).Order(StringComparer.Ordinal)]);
        Assert.Equal(3, index.Holding("m").Count);
    }

    [Fact]
    public void Dispatch_records_the_hint_the_runner_is_about_to_hold_and_the_load()
    {
        var index = new HintIndex();
        index.Apply(Event("r", kind: HintsEventKind.Started), T0);

        index.MarkDispatched("r", "flux");

        var runner = index.Find("r")!;
        Assert.True(runner.Holds("flux"));
        Assert.Equal(1, runner.InFlight);
        Assert.Empty(index.Free);
        Assert.Single(index.Holding("flux"));

        index.MarkCompleted("r", "flux");
        Assert.Single(index.Free);
        Assert.False(runner.Holds("flux"));
        Assert.Empty(index.Holding("flux"));
    }

    [Fact]
    public void Newer_event_replaces_the_holders_of_dropped_hints()
    {
        var index = new HintIndex();
        index.Apply(Event("r", hints: ["a"]), T0);

        index.Apply(Event("r", hints: ["b"]), T0);

        Assert.Empty(index.Holding("a"));
        Assert.Single(index.Holding("b"));
    }

    [Fact]
    public void Draining_event_marks_runner_unavailable()
    {
        var index = new HintIndex();
        index.Apply(Event("r", kind: HintsEventKind.Started), T0);

        index.Apply(Event("r", kind: HintsEventKind.Draining), T0);

        Assert.False(index.Find("r")!.IsFree);
        Assert.Empty(index.Free);
    }

    [Fact]
    public void Removed_runner_leaves_every_view()
    {
        var index = new HintIndex();
        index.Apply(Event("r", hints: ["a"]), T0);

        Assert.True(index.Remove("r"));

        Assert.Empty(index.All);
        Assert.Empty(index.Free);
        Assert.Empty(index.Holding("a"));
    }

    [Fact]
    public void Snapshot_lists_runners_in_id_order()
    {
        var index = new HintIndex();
        index.Apply(Event("b"), T0);
        index.Apply(Event("a"), T0);

        Assert.Equal(["a", "b"], index.Snapshot().Select(r => r.RunnerId));
        Assert.Empty(index.Snapshot()[0].Hints);
    }

    [Fact]
    public void A_runner_first_seen_through_a_possibly_stale_event_takes_no_work_until_confirmed()
    {
        var index = new HintIndex();
        var stale = Event("r", hints: ["a"]);

        index.Apply(stale, T0, current: false);
        Assert.Empty(index.Free);
        index.Apply(Event("r", hints: ["a"]), T0, current: false);
        Assert.Empty(index.Free);

        index.Apply(stale, T0, current: true);
        Assert.Single(index.Free);
    }
}
