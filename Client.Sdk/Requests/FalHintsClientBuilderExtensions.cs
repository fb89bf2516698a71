using Orleans.Configuration;

namespace FalHints.Client.Requests;

/// <summary>Client settings FalHints callers need.</summary>
public static class FalHintsClientBuilderExtensions
{
    /// <summary>
    /// A submission is answered when the request completes, which includes queueing, a model load and
    /// inference; Orleans' default 30 s response timeout is too short for that, so it is raised to
    /// <paramref name="requestTimeout"/> (default 10 minutes).
    /// </summary>
    public static IClientBuilder UseFalHintsDefaults(this IClientBuilder builder, TimeSpan? requestTimeout = null) =>
        builder.Configure<ClientMessagingOptions>(o => o.ResponseTimeout = requestTimeout ?? TimeSpan.FromMinutes(10));
}
