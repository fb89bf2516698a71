using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace FalHints.Host.Gateway;

/// <summary>
/// The API keys the gateway accepts: those in configuration (<see cref="GatewayOptions.ApiKeys"/>, read at start) and
/// those in <see cref="GatewayOptions.ApiKeysFile"/>, one per line, re-read every second, so a key removed from the
/// file is revoked without a restart. A keys file that is configured but missing or unreadable admits none of its
/// keys (fail closed) until it is readable again.
/// </summary>
public sealed partial class ApiKeyStore(IOptionsMonitor<GatewayOptions> options, TimeProvider time, ILogger<ApiKeyStore> logger)
{
    private static readonly TimeSpan RecheckInterval = TimeSpan.FromSeconds(1);
    private readonly Lock _gate = new();
    private string? _path;
    private string? _text;
    private DateTimeOffset _checkedAt = DateTimeOffset.MinValue;
    private byte[][] _fileKeys = [];

    /// <summary>True when callers need a key: keys are configured, or a keys file is.</summary>
    public bool Required => options.CurrentValue.ApiKeys.Count > 0 || !string.IsNullOrWhiteSpace(options.CurrentValue.ApiKeysFile);

    /// <summary>Whether <paramref name="presented"/> is one of the current keys (compared in constant time).</summary>
    public bool IsValid(string presented)
    {
        var bytes = Encoding.UTF8.GetBytes(presented);
        var current = options.CurrentValue;
        return current.ApiKeys.Any(k => CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(k), bytes))
            || FileKeys(current.ApiKeysFile).Any(k => CryptographicOperations.FixedTimeEquals(k, bytes));
    }

    /// <summary>The current key whose <paramref name="idOf"/> is <paramref name="id"/> (tokens name the key that signed them so), or null.</summary>
    public string? KeyWithId(string id, Func<string?, string> idOf)
    {
        var current = options.CurrentValue;
        return current.ApiKeys.Concat(FileKeys(current.ApiKeysFile).Select(k => Encoding.UTF8.GetString(k)))
            .FirstOrDefault(k => string.Equals(idOf(k), id, StringComparison.Ordinal));
    }

    /// <summary>Reads the keys file: one key per line; blank lines and lines starting with '#' are ignored.</summary>
    public static IReadOnlyList<string> Parse(string text) =>
        [.. text.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#'))];

    private byte[][] FileKeys(string? path)
    {
        if (string.IsNullOrWhiteSpace(path))
        {
            return [];
        }

        lock (_gate)
        {
            var now = time.GetUtcNow();
            if (path == _path && now - _checkedAt < RecheckInterval)
            {
                return _fileKeys;
            }

            // The file is read again (it is small) rather than trusting its timestamps: a mounted secret is a symbolic
            // link that is swapped on update, and the link's own time and length do not change.
            _checkedAt = now;
            try
            {
                var text = File.ReadAllText(path);
                if (path != _path || !string.Equals(text, _text, StringComparison.Ordinal))
                {
                    var keys = Parse(text);
                    (_path, _text, _fileKeys) = (path, text, [.. keys.Select(Encoding.UTF8.GetBytes)]);
                    LogKeysLoaded(logger, keys.Count, path);
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                if (_text is not null || _path != path)
                {
                    LogKeysUnreadable(logger, path, ex.Message);
                }

                (_path, _text, _fileKeys) = (path, null, []);
            }

            return _fileKeys;
        }
    }

    [LoggerMessage(1, LogLevel.Information, "Loaded {Count} API keys from {Path}")]
    private static partial void LogKeysLoaded(ILogger logger, int count, string path);

    [LoggerMessage(2, LogLevel.Error, "The API keys file {Path} cannot be read ({Reason}); no key from it is accepted until it can")]
    private static partial void LogKeysUnreadable(ILogger logger, string path, string reason);
}
