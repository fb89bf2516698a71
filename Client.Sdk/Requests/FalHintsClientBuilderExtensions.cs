using System.Diagnostics;
using Orleans.Configuration;

namespace FalHints.Client.Requests;

/// <summary>Client settings FalHints callers need.</summary>
public static class FalHintsClientBuilderExtensions
{
    /// <summary>
    /// A submission is answered when the request completes, which includes queueing, a model load and
    /// inference; Orleans' default 30 s response timeout is too short for that, so it is raised to
    /// <paramref name="requestTimeout"/> (default 10 minutes). Connecting retries for
    /// <paramref name="connectTimeout"/> (default 15 s) and then fails, instead of retrying forever.
    /// </summary>
    public static IClientBuilder UseFalHintsDefaults(this IClientBuilder builder, TimeSpan? requestTimeout = null, TimeSpan? connectTimeout = null)
    {
        var connectFor = connectTimeout ?? TimeSpan.FromSeconds(15);
        Stopwatch? connecting = null;
        return builder
            .Configure<ClientMessagingOptions>(o => o.ResponseTimeout = requestTimeout ?? TimeSpan.FromMinutes(10))
            .UseConnectionRetryFilter(async (_, cancellationToken) =>
            {
                connecting ??= Stopwatch.StartNew();
                if (connecting.Elapsed >= connectFor)
                {
                    return false;
                }

                await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken).ConfigureAwait(false);
                return true;
            });
    }
}
