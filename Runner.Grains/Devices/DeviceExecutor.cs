using System.Collections.Concurrent;

namespace FalHints.Runner.Devices;

/// <summary>
/// Runs tensor work for one device on one dedicated thread. TorchSharp's dispose scopes and
/// no-grad state are thread-static, so work items must run start to finish on the same thread
/// and must not await inside.
/// </summary>
public sealed class DeviceExecutor : IDisposable
{
    private readonly BlockingCollection<Action> _work = new();
    private readonly Thread _thread;

    /// <summary>Starts the device's thread.</summary>
    public DeviceExecutor(string device)
    {
        Device = device;
        _thread = new Thread(Drain) { IsBackground = true, Name = $"falhints-{device}" };
        _thread.Start();
    }

    /// <summary>The device this executor owns, e.g. <c>cpu:0</c> or <c>cuda:1</c>.</summary>
    public string Device { get; }

    /// <summary>Queues <paramref name="work"/> on the device thread and completes with its result.</summary>
    public Task<T> RunAsync<T>(Func<T> work, CancellationToken cancellationToken = default)
    {
        var completion = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        _work.Add(() =>
        {
            if (cancellationToken.IsCancellationRequested)
            {
                completion.TrySetCanceled(cancellationToken);
                return;
            }

            try
            {
                completion.TrySetResult(work());
            }
            catch (Exception ex)
            {
                completion.TrySetException(ex);
            }
        }, cancellationToken);
        return completion.Task;
    }

    /// <summary>Queues <paramref name="work"/> on the device thread and completes when it has run.</summary>
    public Task RunAsync(Action work, CancellationToken cancellationToken = default) =>
        RunAsync(() =>
        {
            work();
            return true;
        }, cancellationToken);

    /// <summary>Finishes queued work, then stops the thread.</summary>
    public void Dispose()
    {
        _work.CompleteAdding();
        if (Thread.CurrentThread != _thread)
        {
            _thread.Join();
        }

        _work.Dispose();
    }

    private void Drain()
    {
        foreach (var item in _work.GetConsumingEnumerable())
        {
            item();
        }
    }
}
