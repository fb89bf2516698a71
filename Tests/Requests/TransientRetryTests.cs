using FalHints.Client.Requests;

namespace FalHints.Tests.Requests;

/// <summary>Which failures of a call to the cluster the client SDK retries.</summary>
public sealed class TransientRetryTests
{
    private static readonly TimeSpan NoDelay = TimeSpan.Zero;

    [Fact]
    public async Task Failures_the_cluster_reports_while_it_changes_are_retried()
    {
        var failures = new Queue<Exception>([
            new OrleansException("silo leaving"),
            new TimeoutException("call timed out"),
            new OperationCanceledException("directory lookup cancelled while a range changed hands"),
        ]);
        var calls = 0;

        var result = await FalRequestHandle.RetryTransientAsync(() =>
        {
            calls++;
            return failures.TryDequeue(out var failure) ? Task.FromException<string>(failure) : Task.FromResult("done");
        }, CancellationToken.None, NoDelay);

        Assert.Equal(("done", 4), (result, calls));
    }

    [Fact]
    public async Task A_cancellation_by_the_caller_and_other_errors_are_not_retried()
    {
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();
        var calls = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => FalRequestHandle.RetryTransientAsync(() =>
        {
            calls++;
            return Task.FromException<string>(new OperationCanceledException(cancelled.Token));
        }, cancelled.Token, NoDelay));
        Assert.Equal(1, calls);

        calls = 0;
        await Assert.ThrowsAsync<ArgumentException>(() => FalRequestHandle.RetryTransientAsync(() =>
        {
            calls++;
            return Task.FromException<string>(new ArgumentException("bad input"));
        }, CancellationToken.None, NoDelay));
        Assert.Equal(1, calls);
    }
}
