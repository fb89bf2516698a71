namespace FalHints.Router.Requests;

/// <summary>
/// How many times this node has seen the request store emptied under it (a Redis flushed, or restarted without
/// persistence). Each request grain active here writes its record back once after each loss it sees: in the next
/// call it answers or its next resume tick, so unfinished requests survive the loss and the node's exit that follows.
/// </summary>
public sealed class RequestStoreLosses
{
    private int _count;

    /// <summary>Losses seen so far.</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>The store was found emptied.</summary>
    public void Report() => Interlocked.Increment(ref _count);
}
