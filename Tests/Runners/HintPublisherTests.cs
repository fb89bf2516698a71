using FalHints.Client.Contracts;
using FalHints.Runner.Runners;

namespace FalHints.Tests.Runners;

public sealed class HintPublisherTests
{
    private static HintsEvent Event(string app, long sequence) =>
        Support.Runners.Event("silo/cpu:0") with { AppId = app, Sequence = sequence };

    [Fact]
    public async Task Events_waiting_behind_a_publish_under_way_are_replaced_by_the_newest_of_their_app_and_keep_their_order()
    {
        var published = new List<(string App, long Sequence)>();
        var first = new TaskCompletionSource();
        var publisher = new HintPublisher(async e =>
        {
            published.Add((e.AppId, e.Sequence));
            if (e.Sequence == 1)
            {
                await first.Task;
            }
        });

        var under = publisher.PublishAsync(Event("o/a", 1));
        var waiting = new[]
        {
            publisher.PublishAsync(Event("o/a", 2)),
            publisher.PublishAsync(Event("o/b", 3)),
            publisher.PublishAsync(Event("o/a", 4)),
            publisher.PublishAsync(Event("o/a", 5)),
        };

        Assert.Equal([("o/a", 1L)], published);
        Assert.All(waiting, t => Assert.False(t.IsCompleted));

        first.SetResult();
        await Task.WhenAll([under, .. waiting]);

        // One message for the three events of o/a that waited, in the place of the first of them, with the newest state.
        Assert.Equal([("o/a", 1L), ("o/a", 5L), ("o/b", 3L)], published);
    }

    [Fact]
    public async Task Events_made_one_after_another_are_each_published()
    {
        var published = new List<long>();
        var publisher = new HintPublisher(e =>
        {
            published.Add(e.Sequence);
            return Task.CompletedTask;
        });

        for (var sequence = 1; sequence <= 4; sequence++)
        {
            await publisher.PublishAsync(Event("o/a", sequence));
        }

        Assert.Equal([1L, 2L, 3L, 4L], published);
    }

    [Fact]
    public async Task A_publish_that_throws_does_not_stop_the_events_after_it()
    {
        var published = new List<long>();
        var publisher = new HintPublisher(e =>
        {
            published.Add(e.Sequence);
            return e.Sequence == 1 ? Task.FromException(new InvalidOperationException("the stream refused the event")) : Task.CompletedTask;
        });

        await Assert.ThrowsAsync<InvalidOperationException>(() => publisher.PublishAsync(Event("o/a", 1)));
        await publisher.PublishAsync(Event("o/a", 2));
        await publisher.PublishAsync(Event("o/b", 3));

        Assert.Equal([1L, 2L, 3L], published);
    }

    [Fact]
    public async Task A_heartbeat_made_while_an_event_of_its_app_waits_does_not_replace_it()
    {
        var published = new List<(long Sequence, HintsEventKind Kind)>();
        var first = new TaskCompletionSource();
        var publisher = new HintPublisher(async e =>
        {
            published.Add((e.Sequence, e.Kind));
            if (e.Sequence == 1)
            {
                await first.Task;
            }
        });

        var under = publisher.PublishAsync(Event("o/a", 1) with { Kind = HintsEventKind.Heartbeat });
        var response = publisher.PublishAsync(Event("o/a", 2) with { Kind = HintsEventKind.Response, RequestId = "r" });
        var heartbeat = publisher.PublishAsync(Event("o/a", 3) with { Kind = HintsEventKind.Heartbeat });
        first.SetResult();
        await Task.WhenAll(under, response, heartbeat);

        Assert.Equal([(1L, HintsEventKind.Heartbeat), (2L, HintsEventKind.Response)], published);
    }
}
