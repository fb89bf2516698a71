using FalHints.Client.Contracts;

namespace FalHints.Runner.Runners;

/// <summary>
/// Publishes one runner's hint events in the order they were made: each publish starts after the one before it, so
/// subscribers see a runner's events in sequence order even when a heartbeat and a response interleave. Each event is
/// the whole state of the runner's app, so an event still waiting behind a publish under way is replaced by a newer one
/// of the same app rather than sent first: a burst of responses costs one stream message, and no subscriber sees an
/// older state after a newer one. A heartbeat made while an event of its app waits is dropped instead, so an event that
/// follows a response is never replaced by one that follows nothing. Not thread-safe: a grain calls it from its own turns.
/// </summary>
internal sealed class HintPublisher(Func<HintsEvent, Task> publish)
{
    private readonly Dictionary<string, HintsEvent> _waiting = new(StringComparer.Ordinal);
    private Task _last = Task.CompletedTask;

    /// <summary>
    /// Queues <paramref name="hints"/> behind every earlier event; the task completes once it, or a newer event of the
    /// same app, has been published, and fails if that publish failed; a failed publish does not hold up the events after it.
    /// </summary>
    public Task PublishAsync(HintsEvent hints)
    {
        var queued = _waiting.ContainsKey(hints.AppId);
        if (queued && hints.Kind == HintsEventKind.Heartbeat)
        {
            // The waiting event goes out next and tells as much (the runner lives, and its state of a moment ago), while
            // it also names what happened, the response it followed; a heartbeat replacing it would hide that.
            return _last;
        }

        _waiting[hints.AppId] = hints;
        if (!queued)
        {
            _last = PublishAfterAsync(_last, hints.AppId);
        }

        return _last;
    }

    private async Task PublishAfterAsync(Task previous, string appId)
    {
        try
        {
            await previous;
        }
        catch (Exception)
        {
            // The earlier event's failure is its caller's: this event is published all the same.
        }

        _waiting.Remove(appId, out var newest);
        await publish(newest!);
    }
}
