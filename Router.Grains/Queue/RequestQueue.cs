using FalHints.Client.Contracts;
using FalHints.Router.Placement;

namespace FalHints.Router.Queue;

/// <summary>Read access to an app's waiting requests, as placement policies see them.</summary>
public interface IQueueView
{
    /// <summary>Requests waiting.</summary>
    int Count { get; }

    /// <summary>The oldest request of the head's priority class (the oldest normal one, else the oldest low one).</summary>
    RequestTicket? Head { get; }

    /// <summary>The requests of the head's priority class, oldest first: the only ones a policy may start.</summary>
    IEnumerable<RequestTicket> HeadClass { get; }

    /// <summary>The distinct hints of the head's priority class.</summary>
    IReadOnlyCollection<string> HeadClassHints { get; }

    /// <summary>True when the request is waiting.</summary>
    bool Contains(string requestId);

    /// <summary>The oldest request of the head's priority class that has <paramref name="hint"/> among its hints.</summary>
    RequestTicket? OldestInHeadClassWith(string hint);

    /// <summary>How many requests of the head's priority class have <paramref name="hint"/> among their hints.</summary>
    int CountInHeadClassWith(string hint);

    /// <summary>The requests of the head's priority class with <paramref name="hint"/> among their hints, oldest first.</summary>
    IEnumerable<RequestTicket> InHeadClassWith(string hint);

    /// <summary>True when <paramref name="first"/> starts before <paramref name="second"/> (both waiting, same class).</summary>
    bool StartsBefore(RequestTicket first, RequestTicket second);
}

/// <summary>
/// An app's waiting requests: normal priority before low, each class in order of acceptance. A request queued
/// again after its runner died keeps its original place. Each class is also indexed by hint, so a freed runner finds
/// the oldest request it holds the hint for without scanning the queue.
/// </summary>
public sealed class RequestQueue : IQueueView
{
    private readonly LinkedList<RequestTicket> _normal = new();
    private readonly LinkedList<RequestTicket> _low = new();
    private readonly Dictionary<string, LinkedListNode<RequestTicket>> _byId = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _added = new(StringComparer.Ordinal);
    private long _additions;
    private readonly Dictionary<string, LinkedList<RequestTicket>> _normalByHint = new(StringComparer.Ordinal);
    private readonly Dictionary<string, LinkedList<RequestTicket>> _lowByHint = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<(string Hint, LinkedListNode<RequestTicket> Node)>> _hintNodes = new(StringComparer.Ordinal);

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
        var low = ticket.Options.Priority == RequestPriority.Low;
        _byId.Add(ticket.RequestId, InsertInOrder(low ? _low : _normal, ticket));
        _added[ticket.RequestId] = ++_additions;
        var nodes = new List<(string Hint, LinkedListNode<RequestTicket> Node)>();
        foreach (var hint in RequestHints.Of(ticket))
        {
            var byHint = low ? _lowByHint : _normalByHint;
            if (!byHint.TryGetValue(hint, out var holders))
            {
                byHint[hint] = holders = new LinkedList<RequestTicket>();
            }

            nodes.Add((hint, InsertInOrder(holders, ticket)));
        }

        if (nodes.Count > 0)
        {
            _hintNodes[ticket.RequestId] = nodes;
        }
    }

    /// <summary>The oldest request of the head's priority class that has <paramref name="hint"/> among its hints.</summary>
    public RequestTicket? OldestInHeadClassWith(string hint) =>
        HeadClassByHint.TryGetValue(hint, out var list) ? list.First?.Value : null;

    /// <summary>How many requests of the head's priority class have <paramref name="hint"/> among their hints.</summary>
    public int CountInHeadClassWith(string hint) => HeadClassByHint.TryGetValue(hint, out var list) ? list.Count : 0;

    /// <summary>The requests of the head's priority class with <paramref name="hint"/> among their hints, oldest first.</summary>
    public IEnumerable<RequestTicket> InHeadClassWith(string hint) => HeadClassByHint.TryGetValue(hint, out var list) ? list : [];

    /// <summary>The distinct hints of the head's priority class.</summary>
    public IReadOnlyCollection<string> HeadClassHints => HeadClassByHint.Keys;

    private Dictionary<string, LinkedList<RequestTicket>> HeadClassByHint => _normal.Count > 0 ? _normalByHint : _lowByHint;

    /// <summary>True when <paramref name="first"/> starts before <paramref name="second"/> (both waiting, same class).</summary>
    /// <remarks>Equal acceptance times keep their insertion order, in the lists and here.</remarks>
    public bool StartsBefore(RequestTicket first, RequestTicket second) =>
        first.AcceptedAt != second.AcceptedAt
            ? first.AcceptedAt < second.AcceptedAt
            : _added[first.RequestId] < _added[second.RequestId];

    private static LinkedListNode<RequestTicket> InsertInOrder(LinkedList<RequestTicket> list, RequestTicket ticket)
    {
        var after = list.Last;
        while (after is not null && after.Value.AcceptedAt > ticket.AcceptedAt)
        {
            after = after.Previous;
        }

        return after is null ? list.AddFirst(ticket) : list.AddAfter(after, ticket);
    }

    /// <summary>Removes a waiting request; false when it is not waiting.</summary>
    public bool Remove(string requestId)
    {
        if (!_byId.Remove(requestId, out var node))
        {
            return false;
        }

        var low = node.List == _low;
        node.List!.Remove(node);
        _added.Remove(requestId);
        if (_hintNodes.Remove(requestId, out var hinted))
        {
            foreach (var (hint, hintNode) in hinted)
            {
                var list = hintNode.List!;
                list.Remove(hintNode);
                if (list.Count == 0)
                {
                    (low ? _lowByHint : _normalByHint).Remove(hint);
                }
            }
        }

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
