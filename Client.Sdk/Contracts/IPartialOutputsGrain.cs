using System.Collections.Immutable;

namespace FalHints.Client.Contracts;

/// <summary>
/// The partial outputs of one request to a streaming endpoint, keyed by the request id, in memory: the runner publishes
/// each one (before it reports the request complete, so a reader that sees the request completed has seen them all),
/// and the gateway reads them to send them as server-sent events.
/// </summary>
[Alias("falhints.IPartialOutputsGrain")]
public interface IPartialOutputsGrain : IGrainWithStringKey
{
    /// <summary>Runner: one more partial output, as JSON.</summary>
    [Alias("PublishAsync")]
    Task PublishAsync(string outputJson);

    /// <summary>
    /// The partial outputs after number <paramref name="after"/> (-1 for all), waiting up to <paramref name="maxWait"/>
    /// (at most 25 s) for one when there is none yet.
    /// </summary>
    [Alias("ReadAsync")]
    Task<ImmutableArray<PartialOutput>> ReadAsync(int after, TimeSpan maxWait);

    /// <summary>Reader: done; the outputs can be dropped.</summary>
    [Alias("ReleaseAsync")]
    Task ReleaseAsync();
}

/// <summary>A partial output: its number (from 0, in the order published) and its JSON.</summary>
[GenerateSerializer, Immutable, Alias("falhints.PartialOutput")]
public sealed record PartialOutput(
    [property: Id(0)] int Index,
    [property: Id(1)] string OutputJson);
