using FalHints.Client.Contracts;
using Orleans.Streams;

namespace FalHints.Tests.Support;

/// <summary>Records the hints events of one app as a client subscriber sees them.</summary>
public sealed class HintEventLog
{
    private readonly List<HintsEvent> _events = [];
    private readonly List<(Func<HintsEvent, bool> Match, TaskCompletionSource<HintsEvent> Seen)> _waiters = [];
    private StreamSubscriptionHandle<HintsEvent>? _subscription;

    public IReadOnlyList<HintsEvent> Events
    {
        get
        {
            lock (_events)
            {
                return [.. _events];
            }
        }
    }

    public static async Task<HintEventLog> SubscribeAsync(IClusterClient client, string appId)
    {
        var log = new HintEventLog();
        var stream = client.GetStreamProvider(HintStream.ProviderName).GetStream<HintsEvent>(StreamId.Create(HintStream.Namespace, appId));
        log._subscription = await stream.SubscribeAsync((hints, _) =>
        {
            log.Add(hints);
            return Task.CompletedTask;
        });
        return log;
    }

    public Task UnsubscribeAsync() => _subscription?.UnsubscribeAsync() ?? Task.CompletedTask;

    /// <summary>The first event (already seen or still to come) that matches; fails after <paramref name="timeout"/>.</summary>
    public async Task<HintsEvent> WaitForAsync(Func<HintsEvent, bool> match, TimeSpan timeout, string what)
    {
        var seen = new TaskCompletionSource<HintsEvent>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_events)
        {
            if (_events.FirstOrDefault(match) is { } already)
            {
                return already;
            }

            _waiters.Add((match, seen));
        }

        try
        {
            return await seen.Task.WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            throw new Xunit.Sdk.XunitException($"No hints event {what} within {timeout}; saw {Events.Count} events.");
        }
    }

    private void Add(HintsEvent hints)
    {
        lock (_events)
        {
            _events.Add(hints);
            foreach (var waiter in _waiters.Where(w => w.Match(hints)).ToList())
            {
                waiter.Seen.TrySetResult(hints);
                _waiters.Remove(waiter);
            }
        }
    }
}
