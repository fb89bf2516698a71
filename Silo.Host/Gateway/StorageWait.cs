using FalHints.Client.Contracts;
using FalHints.Client.Requests;
using FalHints.Host.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace FalHints.Host.Gateway;

/// <summary>
/// A submission made while the request store is unreachable (Redis down) waits for it at most
/// <see cref="GatewayOptions.StorageUnavailableWait"/>, then answers a retryable 503, instead of hanging in the
/// client's transient retries for a minute and a half.
/// </summary>
internal static class StorageWait
{
    private static readonly TimeSpan CheckInterval = TimeSpan.FromMilliseconds(250);

    public static async Task<(FalRequestHandle? Handle, IResult? Unavailable)> EnqueueAsync(HttpContext http, TimeSpan wait,
        Func<CancellationToken, Task<FalRequestHandle>> enqueue)
    {
        var health = http.RequestServices.GetService<NodeHealth>();
        var time = http.RequestServices.GetRequiredService<TimeProvider>();
        using var submitting = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted);
        var started = time.GetTimestamp();
        var submission = enqueue(submitting.Token);
        while (health is not null && !submission.IsCompleted)
        {
            await Task.WhenAny(submission, Task.Delay(CheckInterval, time, http.RequestAborted));
            if (submission.IsCompleted || health.StorageUnreachableFor == TimeSpan.Zero || time.GetElapsedTime(started) < wait)
            {
                continue;
            }

            await submitting.CancelAsync();
            try
            {
                // It may have been accepted just now: then it stands.
                return (await submission, null);
            }
            catch (Exception ex) when (ClusterFailures.IsTransient(ex) && !http.RequestAborted.IsCancellationRequested)
            {
                http.Response.Headers.RetryAfter = "1";
                return (null, FalQueueApi.Error(StatusCodes.Status503ServiceUnavailable, ErrorCodes.ClusterUnavailable,
                    $"The cluster's request store has not answered for {health.StorageUnreachableFor.TotalSeconds:0} s, so the request was not accepted; retry shortly."));
            }
        }

        return (await submission, null);
    }
}
