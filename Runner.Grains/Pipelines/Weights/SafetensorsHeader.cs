using System.Buffers.Binary;
using System.Globalization;
using System.Text.Json;
using System.Text.Unicode;
using Microsoft.Win32.SafeHandles;
using static TorchSharp.torch;

namespace FalHints.Runner.Pipelines.Weights;

/// <summary>A weights file that cannot be what it claims; the message names the tensor or the field at fault.</summary>
public sealed class WeightsFormatException(string message) : Exception(message);

/// <summary>One tensor of a safetensors file: its name, element type, shape, and where its bytes lie in the file.</summary>
/// <param name="Name">The tensor's name (a module's state-dict key).</param>
/// <param name="DType">The element type as the file names it (<c>F32</c>, <c>BF16</c>, ...).</param>
/// <param name="Type">The same element type as TorchSharp's.</param>
/// <param name="Shape">The tensor's shape.</param>
/// <param name="Offset">Where its bytes start, counted from the start of the file.</param>
/// <param name="Length">How many bytes it has.</param>
public sealed record SafetensorsTensor(string Name, string DType, ScalarType Type, long[] Shape, long Offset, long Length)
{
    /// <summary>Bytes per element.</summary>
    public int ElementSize => SafetensorsHeader.ElementSize(Type);

    /// <summary>Elements.</summary>
    public long Elements => Length / ElementSize;
}

/// <summary>A tensor a module expects to find in its weights file.</summary>
public sealed record ExpectedTensor(string Name, ScalarType Type, long[] Shape);

/// <summary>
/// The header of a safetensors file (an 8-byte little-endian length, then that many bytes of JSON naming each tensor's
/// dtype, shape and data offsets), read and checked before any tensor memory is allocated: a length past the file or
/// over 100 MB, JSON that is not the format's, offsets outside the file, overlapping tensors and sizes that do not match
/// their shape are refused with a message that names the tensor.
/// </summary>
public sealed class SafetensorsHeader
{
    /// <summary>The largest header accepted, as in the reference implementation (100 MB).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private static readonly Dictionary<string, ScalarType> DTypes = new(StringComparer.Ordinal)
    {
        ["BOOL"] = ScalarType.Bool,
        ["U8"] = ScalarType.Byte,
        ["I8"] = ScalarType.Int8,
        ["I16"] = ScalarType.Int16,
        ["I32"] = ScalarType.Int32,
        ["I64"] = ScalarType.Int64,
        ["F16"] = ScalarType.Float16,
        ["BF16"] = ScalarType.BFloat16,
        ["F32"] = ScalarType.Float32,
        ["F64"] = ScalarType.Float64,
    };

    private SafetensorsHeader(long dataStart, long fileLength, IReadOnlyList<SafetensorsTensor> tensors)
    {
        DataStart = dataStart;
        FileLength = fileLength;
        Tensors = tensors;
    }

    /// <summary>Where the tensors' bytes begin in the file (after the length and the JSON).</summary>
    public long DataStart { get; }

    /// <summary>The file's length when it was read.</summary>
    public long FileLength { get; }

    /// <summary>The tensors, in the order of their bytes in the file.</summary>
    public IReadOnlyList<SafetensorsTensor> Tensors { get; }

    /// <summary>Bytes of all tensors.</summary>
    public long TensorBytes => Tensors.Sum(t => t.Length);

    /// <summary>Bytes per element of <paramref name="type"/>.</summary>
    public static int ElementSize(ScalarType type) => type switch
    {
        ScalarType.Bool or ScalarType.Byte or ScalarType.Int8 => 1,
        ScalarType.Int16 or ScalarType.Float16 or ScalarType.BFloat16 => 2,
        ScalarType.Int32 or ScalarType.Float32 => 4,
        ScalarType.Int64 or ScalarType.Float64 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "Not an element type of safetensors files."),
    };

    /// <summary>The file's name for <paramref name="type"/> (<c>F32</c>, ...).</summary>
    public static string DTypeName(ScalarType type) =>
        DTypes.FirstOrDefault(p => p.Value == type).Key ?? type.ToString();

    /// <summary>Reads and checks the header of the open file <paramref name="file"/>.</summary>
    /// <exception cref="WeightsFormatException">The header is not a valid safetensors header for a file of this length.</exception>
    public static SafetensorsHeader Read(SafeFileHandle file)
    {
        var fileLength = RandomAccess.GetLength(file);
        if (fileLength < 8)
        {
            throw new WeightsFormatException($"the file is {fileLength} bytes long, shorter than the 8-byte header length: it is truncated");
        }

        Span<byte> prefix = stackalloc byte[8];
        ReadExactly(file, prefix, 0, "its header");
        var headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (headerLength > (ulong)(fileLength - 8))
        {
            throw new WeightsFormatException(
                $"the header length is {headerLength} bytes, more than the {fileLength - 8} bytes that follow it: the file is truncated or not safetensors");
        }

        if (headerLength > MaxHeaderBytes)
        {
            throw new WeightsFormatException($"the header length is {headerLength} bytes, more than the {MaxHeaderBytes} allowed");
        }

        var json = new byte[headerLength];
        ReadExactly(file, json, 8, "its header");
        return Parse(json, 8 + (long)headerLength, fileLength);
    }

    /// <summary>Checks that the file holds exactly the tensors <paramref name="expected"/> names, with their types and shapes.</summary>
    /// <exception cref="WeightsFormatException">A tensor is missing, unexpected, of another type or of another shape.</exception>
    public void CheckAgainst(IReadOnlyList<ExpectedTensor> expected)
    {
        var present = Tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
        var missing = expected.Where(e => !present.ContainsKey(e.Name)).Select(e => e.Name).ToList();
        var wanted = expected.Select(e => e.Name).ToHashSet(StringComparer.Ordinal);
        var unexpected = Tensors.Where(t => !wanted.Contains(t.Name)).Select(t => t.Name).ToList();
        if (missing.Count > 0 || unexpected.Count > 0)
        {
            var parts = new List<string>();
            if (missing.Count > 0)
            {
                parts.Add($"it has no tensor {Names(missing)}");
            }

            if (unexpected.Count > 0)
            {
                parts.Add($"it has the unexpected tensor{(unexpected.Count == 1 ? "" : "s")} {Names(unexpected)}");
            }

            throw new WeightsFormatException(string.Join("; ", parts));
        }

        foreach (var want in expected)
        {
            var have = present[want.Name];
            if (have.Type != want.Type)
            {
                throw new WeightsFormatException($"tensor '{want.Name}' is {have.DType}, the model expects {DTypeName(want.Type)}");
            }

            if (!have.Shape.AsSpan().SequenceEqual(want.Shape))
            {
                throw new WeightsFormatException($"tensor '{want.Name}' has shape {Shape(have.Shape)}, the model expects {Shape(want.Shape)}");
            }
        }
    }

    /// <summary>Formats a shape as <c>[a, b]</c>.</summary>
    public static string Shape(long[] shape) => "[" + string.Join(", ", shape.Select(d => d.ToString(CultureInfo.InvariantCulture))) + "]";

    private static string Names(List<string> names) =>
        string.Join(", ", names.Take(5).Select(n => $"'{n}'")) + (names.Count > 5 ? $" and {names.Count - 5} more" : "");

    private static SafetensorsHeader Parse(byte[] json, long dataStart, long fileLength)
    {
        // The JSON reader checks the text's UTF-8 only when a string is read, and then throws what is no JSON error.
        if (!Utf8.IsValid(json))
        {
            throw new WeightsFormatException("the header is not valid UTF-8");
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 8 });
        }
        catch (JsonException ex)
        {
            throw new WeightsFormatException($"the header is not valid JSON: {ex.Message}");
        }

        using var _ = document;
        if (document.RootElement.ValueKind != JsonValueKind.Object)
        {
            throw new WeightsFormatException($"the header is a JSON {document.RootElement.ValueKind}, not an object of tensors");
        }

        var dataLength = fileLength - dataStart;
        var tensors = new List<SafetensorsTensor>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var property in document.RootElement.EnumerateObject())
        {
            if (!names.Add(property.Name))
            {
                throw new WeightsFormatException($"tensor '{property.Name}' is listed twice");
            }

            if (property.Name == "__metadata__")
            {
                if (property.Value.ValueKind != JsonValueKind.Object)
                {
                    throw new WeightsFormatException("'__metadata__' is not an object");
                }

                continue;
            }

            tensors.Add(ParseTensor(property.Name, property.Value, dataStart, dataLength));
        }

        tensors.Sort((a, b) => a.Offset != b.Offset ? a.Offset.CompareTo(b.Offset) : a.Length.CompareTo(b.Length));
        for (var i = 1; i < tensors.Count; i++)
        {
            var previous = tensors[i - 1];
            if (tensors[i].Length > 0 && previous.Offset + previous.Length > tensors[i].Offset)
            {
                throw new WeightsFormatException(
                    $"tensors '{previous.Name}' and '{tensors[i].Name}' overlap (bytes {previous.Offset - dataStart}-{previous.Offset - dataStart + previous.Length} and {tensors[i].Offset - dataStart}-{tensors[i].Offset - dataStart + tensors[i].Length} of the data)");
            }
        }

        return new SafetensorsHeader(dataStart, fileLength, tensors);
    }

    private static SafetensorsTensor ParseTensor(string name, JsonElement entry, long dataStart, long dataLength)
    {
        if (entry.ValueKind != JsonValueKind.Object)
        {
            throw new WeightsFormatException($"tensor '{name}' is described by a JSON {entry.ValueKind}, not an object");
        }

        if (!entry.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
        {
            throw new WeightsFormatException($"tensor '{name}' has no dtype");
        }

        var dtype = dtypeElement.GetString()!;
        if (!DTypes.TryGetValue(dtype, out var type))
        {
            throw new WeightsFormatException($"tensor '{name}' has the unsupported dtype '{dtype}' (supported: {string.Join(", ", DTypes.Keys)})");
        }

        if (!entry.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array)
        {
            throw new WeightsFormatException($"tensor '{name}' has no shape");
        }

        var shape = new long[shapeElement.GetArrayLength()];
        var elements = 1L;
        var index = 0;
        foreach (var dimension in shapeElement.EnumerateArray())
        {
            if (dimension.ValueKind != JsonValueKind.Number || !dimension.TryGetInt64(out var size) || size < 0)
            {
                throw new WeightsFormatException($"tensor '{name}' has a shape entry that is not a non-negative integer: {dimension.GetRawText()}");
            }

            shape[index++] = size;
            elements = size == 0 || elements == 0 ? 0 : elements > long.MaxValue / size ? -1 : elements * size;
            if (elements < 0)
            {
                throw new WeightsFormatException($"tensor '{name}' has the impossibly large shape {shapeElement.GetRawText()}");
            }
        }

        if (!entry.TryGetProperty("data_offsets", out var offsets) || offsets.ValueKind != JsonValueKind.Array || offsets.GetArrayLength() != 2
            || offsets[0].ValueKind != JsonValueKind.Number || offsets[1].ValueKind != JsonValueKind.Number
            || !offsets[0].TryGetInt64(out var begin) || !offsets[1].TryGetInt64(out var end) || begin < 0 || end < begin)
        {
            throw new WeightsFormatException($"tensor '{name}' has no valid data_offsets (expected [begin, end] with 0 <= begin <= end)");
        }

        var elementSize = ElementSize(type);
        if (elements > long.MaxValue / elementSize || end - begin != elements * elementSize)
        {
            throw new WeightsFormatException(
                $"tensor '{name}' spans {end - begin} bytes, but {dtype} of shape {Shape(shape)} takes {(elements > long.MaxValue / elementSize ? "more than 2^63" : (elements * elementSize).ToString(CultureInfo.InvariantCulture))}");
        }

        if (end > dataLength)
        {
            throw new WeightsFormatException(
                $"tensor '{name}' ends at byte {end} of the data, but the file holds only {dataLength} bytes of data: it is truncated");
        }

        return new SafetensorsTensor(name, dtype, type, shape, dataStart + begin, end - begin);
    }

    /// <summary>Fills <paramref name="buffer"/> from <paramref name="offset"/> of the file; <paramref name="what"/> names what is read, for the error.</summary>
    /// <exception cref="WeightsFormatException">The file ends first.</exception>
    internal static void ReadExactly(SafeFileHandle file, Span<byte> buffer, long offset, string what)
    {
        while (!buffer.IsEmpty)
        {
            var read = RandomAccess.Read(file, buffer, offset);
            if (read == 0)
            {
                throw new WeightsFormatException($"the file ended at byte {offset} while {what} was read: it is truncated");
            }

            buffer = buffer[read..];
            offset += read;
        }
    }
}
