namespace FalHints.Client.Requests;

/// <summary>Which failures of a call into the cluster are worth another try.</summary>
public static class ClusterFailures
{
    /// <summary>
    /// True for what the cluster reports while it changes: a silo leaving, a call timing out, a grain lookup cancelled
    /// while the directory changes hands. A caller that cancelled a call itself must check its own token first.
    /// </summary>
    public static bool IsTransient(Exception exception) =>
        exception is OrleansException or TimeoutException or OperationCanceledException;
}
