using System.Security.Cryptography;

namespace FalHints.Host.Gateway;

/// <summary>Output files (images) the gateway serves by URL, named by content hash, oldest dropped beyond a byte budget.</summary>
public sealed class FileCache(long budgetBytes)
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, LinkedListNode<StoredFile>> _files = new(StringComparer.Ordinal);
    private readonly LinkedList<StoredFile> _age = new();
    private long _bytes;

    /// <summary>A stored file.</summary>
    public sealed record StoredFile(string Name, string ContentType, byte[] Bytes);

    /// <summary>Stores the bytes and returns the file's name (its SHA-256 and an extension from the content type).</summary>
    public string Add(byte[] bytes, string contentType)
    {
        var extension = contentType switch
        {
            "image/png" => ".png",
            "image/jpeg" => ".jpg",
            "image/webp" => ".webp",
            _ => ".bin",
        };
        var name = Convert.ToHexStringLower(SHA256.HashData(bytes)) + extension;
        Put(name, bytes, contentType);
        return name;
    }

    /// <summary>Stores the bytes under <paramref name="name"/> (an uploaded file's name, say), replacing a file of that name.</summary>
    public void Put(string name, byte[] bytes, string contentType)
    {
        lock (_gate)
        {
            if (_files.TryGetValue(name, out var existing))
            {
                _age.Remove(existing);
                _files.Remove(name);
                _bytes -= existing.Value.Bytes.Length;
            }

            _files[name] = _age.AddLast(new StoredFile(name, contentType, bytes));
            _bytes += bytes.Length;
            while (_bytes > budgetBytes && _age.First is { } oldest && oldest != _age.Last)
            {
                _age.RemoveFirst();
                _files.Remove(oldest.Value.Name);
                _bytes -= oldest.Value.Bytes.Length;
            }
        }
    }

    /// <summary>The file with this name, if still kept.</summary>
    public StoredFile? Find(string name)
    {
        lock (_gate)
        {
            return _files.TryGetValue(name, out var node) ? node.Value : null;
        }
    }
}
