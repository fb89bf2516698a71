using FalHints.Client.Contracts;

namespace FalHints.Router.Queue;

/// <summary>
/// An app's waiting requests: normal priority before low, each class in order of acceptance. A request queued
/// again after its runner died keeps its original place.
/// </summary>
public sealed class RequestQueue
{
    private readonly LinkedList<RequestTicket> _normal = new();
    private readonly LinkedList<RequestTicket> _low = new();
    private readonly Dictionary<string, LinkedListNode<RequestTicket>> _byId = new(StringComparer.Ordinal);

    /// <summary>Requests waiting.</summary>
    public int Count => _byId.Count;

    /// <summary>The next request to start: the oldest normal one, else the oldest low one.</summary>
    public RequestTicket? Head => (_normal.First ?? _low.First)?.Value;

    /// <summary>The requests of the head's priority class, oldest first; requests of a lower class never go before them.</summary>
    public IEnumerable<RequestTicket> HeadClass => _normal.Count > 0 ? _normal : _low;

    /// <summary>Every waiting request, in the order they will start.</summary>
    public IEnumerable<RequestTicket> All => _normal.Concat(_low);

    /// <summary>True when the request is waiting.</summary>
    public bool Contains(string requestId) => _byId.ContainsKey(requestId);

    /// <summary>Adds a request at its place by acceptance time within its priority class.</summary>
    public void Add(RequestTicket ticket)
    {
        var list = ticket.Options.Priority == RequestPriority.Low ? _low : _normal;
        var after = list.Last;
        while (after is not null && after.Value.AcceptedAt > ticket.AcceptedAt)
        {
            after = after.Previous;
        }

        _byId.Add(ticket.RequestId, after is null ? list.AddFirst(ticket) : list.AddAfter(after, ticket));
    }

    /// <summary>Removes a waiting request; false when it is not waiting.</summary>
    public bool Remove(string requestId)
    {
        if (!_byId.Remove(requestId, out var node))
        {
            return false;
        }

        node.List!.Remove(node);
        return true;
    }

    /// <summary>The 0-based position at which the request will start, or null when it is not waiting.</summary>
    public int? Position(string requestId)
    {
        if (!_byId.TryGetValue(requestId, out var node))
        {
            return null;
        }

        var position = node.List == _low ? _normal.Count : 0;
        for (var at = node.Previous; at is not null; at = at.Previous)
        {
            position++;
        }

        return position;
    }

    /// <summary>Removes and returns the waiting requests that match.</summary>
    public IReadOnlyList<RequestTicket> RemoveWhere(Func<RequestTicket, bool> match)
    {
        var removed = All.Where(match).ToList();
        removed.ForEach(t => Remove(t.RequestId));
        return removed;
    }
}
