using FalHints.Client.Contracts;
using FalHints.Router.Hints;

namespace FalHints.Tests.Hints;

public sealed class HintIndexTests
{
    private static HintsEvent Event(string runner, long sequence, HintsEventKind kind = HintsEventKind.Response, params string[] hints) =>
        new(runner, "silo", "cpu:0", "o/app", [.. hints], 0, 1, sequence, DateTimeOffset.UnixEpoch, kind, [], CacheUsage.None);

    [Fact]
    public void Applies_newer_events_and_ignores_duplicates_and_older_ones()
    {
        var index = new HintIndex();

        Assert.True(index.Apply(Event("r", 5, hints: ["a"])));
        Assert.False(index.Apply(Event("r", 5, hints: ["stale"])));
        Assert.False(index.Apply(Event("r", 3, hints: ["older"])));
        Assert.True(index.Apply(Event("r", 6, hints: ["a", "b"])));

        Assert.Equal<string>(["a", "b"], index.Views().Single().Hints);
    }

    [Fact]
    public void Dispatch_records_the_hint_the_runner_is_about_to_hold_and_the_load()
    {
        var index = new HintIndex();
        index.Apply(Event("r", 1, HintsEventKind.Started));

        index.MarkDispatched("r", "flux");

        var view = index.Views().Single();
        Assert.Equal<string>(["flux"], view.Hints);
        Assert.Equal(1, view.InFlight);
        Assert.False(view.IsFree);

        index.MarkCompleted("r");
        Assert.True(index.Views().Single().IsFree);
    }

    [Fact]
    public void Draining_event_marks_runner_unavailable()
    {
        var index = new HintIndex();
        index.Apply(Event("r", 1, HintsEventKind.Started));

        index.Apply(Event("r", 2, HintsEventKind.Draining));

        Assert.False(index.Views().Single().IsFree);
    }

    [Fact]
    public void Snapshot_lists_runners_in_id_order()
    {
        var index = new HintIndex();
        index.Apply(Event("b", 1));
        index.Apply(Event("a", 1));

        Assert.Equal(["a", "b"], index.Snapshot().Select(r => r.RunnerId));
        Assert.Empty(index.Snapshot()[0].Hints);
    }
}
