using Orleans.Serialization;
using Orleans.Storage;

namespace FalHints.Host.Hosting;

/// <summary>
/// How request records are written to the memory and Redis stores: Orleans' binary serializer (the records are
/// generated serializable types), several times cheaper than the JSON that Orleans' grain storage uses by default,
/// which cost more than any grain call on the routed path. Records that earlier versions wrote as JSON still read.
/// </summary>
/// <param name="serializer">Orleans' serializer.</param>
/// <param name="json">Orleans' default grain storage serializer (JSON), for records written before.</param>
public sealed class RequestStoreSerializer(Serializer serializer, IGrainStorageSerializer json) : IGrainStorageSerializer
{
    private readonly OrleansGrainStorageSerializer _binary = new(serializer);

    /// <inheritdoc />
    public BinaryData Serialize<T>(T? input) => _binary.Serialize(input);

    /// <inheritdoc />
    public T? Deserialize<T>(BinaryData input) =>
        input.ToMemory().Span is [(byte)'{', ..] ? json.Deserialize<T>(input) : _binary.Deserialize<T>(input);
}
