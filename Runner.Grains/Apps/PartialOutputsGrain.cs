using System.Collections.Immutable;
using FalHints.Client.Contracts;
using Orleans.Concurrency;

namespace FalHints.Runner.Apps;

/// <summary>
/// Holds a streaming request's partial outputs in memory (the last <see cref="MaxKept"/>) until its reader releases them
/// or, unread, for <see cref="Retention"/> after the last one.
/// </summary>
[Reentrant]
public sealed class PartialOutputsGrain(TimeProvider time) : Grain, IPartialOutputsGrain
{
    /// <summary>Partial outputs kept for a slow reader; older ones are dropped.</summary>
    public const int MaxKept = 64;

    /// <summary>How long unread outputs are kept after the last one.</summary>
    public static readonly TimeSpan Retention = TimeSpan.FromMinutes(1);

    private static readonly TimeSpan MaxWait = TimeSpan.FromSeconds(25);
    private readonly Queue<PartialOutput> _kept = new();
    private TaskCompletionSource _published = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private IGrainTimer? _expiry;
    private int _next;

    /// <inheritdoc />
    public Task PublishAsync(string outputJson)
    {
        _kept.Enqueue(new PartialOutput(_next++, outputJson));
        while (_kept.Count > MaxKept)
        {
            _kept.Dequeue();
        }

        var published = _published;
        _published = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        published.TrySetResult();
        _expiry?.Dispose();
        _expiry = this.RegisterGrainTimer(_ =>
        {
            DeactivateOnIdle();
            return Task.CompletedTask;
        }, new GrainTimerCreationOptions(Retention, Timeout.InfiniteTimeSpan) { Interleave = true });
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public async Task<ImmutableArray<PartialOutput>> ReadAsync(int after, TimeSpan maxWait)
    {
        if (_next - 1 <= after && maxWait > TimeSpan.Zero)
        {
            await Task.WhenAny(_published.Task, Task.Delay(maxWait > MaxWait ? MaxWait : maxWait, time));
        }

        return [.. _kept.Where(p => p.Index > after)];
    }

    /// <inheritdoc />
    public Task ReleaseAsync()
    {
        _kept.Clear();
        _published.TrySetResult();
        DeactivateOnIdle();
        return Task.CompletedTask;
    }
}
