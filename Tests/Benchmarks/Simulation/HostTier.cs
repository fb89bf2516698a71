namespace FalHints.Benchmarks.Simulation;

/// <summary>
/// A simulated runner's host-memory tier: models evicted from the device are kept here, least recently used first out,
/// within <see cref="BudgetBytes"/>; bringing one back to the device (a promotion) takes it out of the tier, as a GPU
/// runner's pipeline cache does. A model larger than the whole budget is not kept. A budget of 0 is no tier.
/// </summary>
public sealed class HostTier(long budgetBytes)
{
    private readonly LinkedList<(string Model, long Bytes)> _lru = new();

    /// <summary>Bytes of host memory the tier may use.</summary>
    public long BudgetBytes { get; } = budgetBytes;

    /// <summary>Bytes the tier holds now (never above <see cref="BudgetBytes"/>).</summary>
    public long BytesUsed { get; private set; }

    /// <summary>The models the tier holds, most recently kept first.</summary>
    public IEnumerable<string> Models => _lru.Select(e => e.Model);

    /// <summary>True when the tier holds <paramref name="model"/>.</summary>
    public bool Contains(string model) => _lru.Any(e => e.Model == model);

    /// <summary>Keeps a model evicted from the device, dropping the tier's least recently kept models to make room.</summary>
    public void Keep(string model, long bytes)
    {
        if (bytes > BudgetBytes)
        {
            return;
        }

        Take(model);
        while (BytesUsed + bytes > BudgetBytes)
        {
            BytesUsed -= _lru.Last!.Value.Bytes;
            _lru.RemoveLast();
        }

        _lru.AddFirst((model, bytes));
        BytesUsed += bytes;
    }

    /// <summary>Takes <paramref name="model"/> out of the tier for a promotion; false when the tier does not hold it.</summary>
    public bool Take(string model)
    {
        for (var node = _lru.First; node is not null; node = node.Next)
        {
            if (node.Value.Model == model)
            {
                _lru.Remove(node);
                BytesUsed -= node.Value.Bytes;
                return true;
            }
        }

        return false;
    }

    /// <summary>A copy with the same contents, for runs that branch.</summary>
    public HostTier Clone()
    {
        var copy = new HostTier(BudgetBytes);
        foreach (var entry in _lru)
        {
            copy._lru.AddLast(entry);
        }

        copy.BytesUsed = BytesUsed;
        return copy;
    }
}
