using System.Diagnostics;

namespace FalHints.Client.Requests;

/// <summary>Client settings FalHints callers need.</summary>
public static class FalHintsClientBuilderExtensions
{
    /// <summary>
    /// Connecting retries for <paramref name="connectTimeout"/> (default 15 s) and then fails, instead of retrying
    /// forever. Requests are awaited by polling under Orleans' grain call timeout, so no timeout needs raising.
    /// </summary>
    public static IClientBuilder UseFalHintsDefaults(this IClientBuilder builder, TimeSpan? connectTimeout = null)
    {
        var connectFor = connectTimeout ?? TimeSpan.FromSeconds(15);
        Stopwatch? connecting = null;
        return builder.UseConnectionRetryFilter(async (_, cancellationToken) =>
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
