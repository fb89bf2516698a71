using FalHints.Client.Contracts;
using FalHints.Client.Requests;

namespace FalHints.Tests.Support;

/// <summary>Waits for a condition on state the test can only read (a status, a snapshot), failing after a deadline.</summary>
public static class Eventually
{
    public static async Task<T> ValueAsync<T>(Func<Task<T>> read, Func<T, bool> done, TimeSpan timeout, string what)
    {
        using var deadline = new CancellationTokenSource(timeout);
        var last = await read();
        while (!done(last))
        {
            try
            {
                await Task.Delay(TimeSpan.FromMilliseconds(50), deadline.Token);
            }
            catch (OperationCanceledException)
            {
                throw new Xunit.Sdk.XunitException($"Not {what} within {timeout}; last seen: {last}");
            }

            last = await read();
        }

        return last;
    }

    public static Task<RequestStatus> StatusAsync(FalRequestHandle handle, Func<RequestStatus, bool> done, TimeSpan timeout, string what) =>
        ValueAsync(() => handle.GetStatusAsync(), done, timeout, what);
}
