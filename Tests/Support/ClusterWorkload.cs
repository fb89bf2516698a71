using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using FalHints.Client.Apps;
using FalHints.Client.Requests;

namespace FalHints.Tests.Support;

/// <summary>Workers that each submit one hinted any-model request after another until stopped.</summary>
public sealed class ClusterWorkload : IDisposable
{
    private static readonly string[] Models = ["tiny/alpha", "tiny/alpha", "tiny/alpha", "tiny/beta", "tiny/beta", "tiny/gamma", "tiny/delta"];
    private readonly ConcurrentQueue<Outcome> _outcomes = new();
    private readonly ConcurrentDictionary<string, FalRequestHandle> _pending = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stop = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly Task[] _workers;
    private int _outstanding;

    public ClusterWorkload(FalHintsClient client, int workers, int seed) =>
        _workers = [.. Enumerable.Range(0, workers).Select(i => Task.Run(() => RunAsync(client, new Random(seed + i))))];

    /// <summary>What became of one request; <paramref name="Accepted"/> is false when the submission itself failed.</summary>
    public sealed record Outcome(TimeSpan Sent, TimeSpan Done, string? RunnerId, bool HintHit, string? Error, bool Accepted = true);

    /// <summary>Time since the workload started, on the clock of <see cref="Outcome.Sent"/>.</summary>
    public TimeSpan Elapsed => _clock.Elapsed;

    public IReadOnlyList<Outcome> Outcomes => [.. _outcomes];

    /// <summary>Accepted requests whose result has not come back.</summary>
    public IReadOnlyList<(string Id, FalRequestHandle Handle)> Pending => [.. _pending.Select(p => (p.Key, p.Value))];

    public Task<int> WaitForCompletedAsync(int count, TimeSpan timeout) =>
        Eventually.ValueAsync(() => Task.FromResult(_outcomes.Count), n => n >= count, timeout, $"{count} requests completed");

    public Task<bool> WaitForServedByAsync(string runnerPrefix, TimeSpan since, TimeSpan timeout) =>
        Eventually.ValueAsync(() => Task.FromResult(_outcomes.Any(o => o.Sent > since && o.RunnerId?.StartsWith(runnerPrefix, StringComparison.Ordinal) == true)),
            served => served, timeout, $"a request served by {runnerPrefix}");

    /// <summary>Stops sending and waits for what is in flight; returns how many never came back.</summary>
    public async Task<int> StopAsync(TimeSpan timeout)
    {
        await _stop.CancelAsync();
        try
        {
            await Task.WhenAll(_workers).WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
        }

        return Volatile.Read(ref _outstanding);
    }

    public void Dispose() => _stop.Dispose();

    private async Task RunAsync(FalHintsClient client, Random random)
    {
        while (!_stop.IsCancellationRequested)
        {
            var model = Models[random.Next(Models.Length)];
            var input = JsonSerializer.Serialize(new AnyModelInput(model, $"prompt {random.Next(1000)}"), FalJson.Options);
            var sent = _clock.Elapsed;
            Interlocked.Increment(ref _outstanding);
            string? accepted = null;
            try
            {
                // SubmitAsync's two steps, so an accepted request that never comes back can be named.
                var handle = await client.EnqueueAsync(AnyModel.AppId, input, model);
                _pending[accepted = handle.RequestId] = handle;
                var result = await handle.GetResultAsync();
                _outcomes.Enqueue(new Outcome(sent, _clock.Elapsed, result.RunnerId, result.HintHit, result.Error?.Code));
            }
            catch (Exception ex)
            {
                _outcomes.Enqueue(new Outcome(sent, _clock.Elapsed, null, false, $"client {ex.GetType().Name}: {ex.GetBaseException().Message}", accepted is not null));
            }
            finally
            {
                if (accepted is not null)
                {
                    _pending.TryRemove(accepted, out _);
                }

                Interlocked.Decrement(ref _outstanding);
            }
        }
    }
}
