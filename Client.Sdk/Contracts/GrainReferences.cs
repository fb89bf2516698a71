namespace FalHints.Client.Contracts;

/// <summary>
/// Makes references to the grains of one interface with string keys, resolving the interface's grain type once.
/// Orleans' <c>GetGrain</c> reads the interface's attributes on every call, which on the routed path cost more than some
/// of the grain calls themselves. For silos, whose grain types are known from the start; one per silo and interface.
/// </summary>
/// <typeparam name="TGrain">The grain interface.</typeparam>
public sealed class GrainReferences<TGrain>(IGrainFactory grains)
    where TGrain : IGrainWithStringKey
{
    // Written once, read from any thread: a reference, so never seen half written.
    private Resolved? _resolved;

    /// <summary>The grain with key <paramref name="key"/>.</summary>
    public TGrain Get(string key)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(key);
        if (_resolved is not { } resolved)
        {
            var first = grains.GetGrain<TGrain>(key);
            var reference = (GrainReference)(object)first;
            _resolved = new Resolved(reference.GrainId.Type, reference.InterfaceType);
            return first;
        }

        return (TGrain)grains.GetGrain(GrainId.Create(resolved.Type, key), resolved.Interface);
    }

    private sealed record Resolved(GrainType Type, GrainInterfaceType Interface);
}
