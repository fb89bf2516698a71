using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace FalHints.Host.Gateway;

/// <summary>
/// The API keys the gateway accepts: those in configuration (<see cref="GatewayOptions.ApiKeys"/>, followed as the
/// configuration reloads) and those in <see cref="GatewayOptions.ApiKeysFile"/>, one per line, re-read within a second
/// of the file changing. Removing a key from either revokes it without a restart. A keys file that is configured
/// but missing or unreadable admits nobody (fail closed) until it is readable again.
/// </summary>
public sealed partial class ApiKeyStore(IOptionsMonitor<GatewayOptions> options, TimeProvider time, ILogger<ApiKeyStore> logger)
{
    private static readonly TimeSpan RecheckInterval = TimeSpan.FromSeconds(1);
    private readonly Lock _gate = new();
    private string? _path;
    private DateTime _lastWrite;
    private long _length = -1;
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

            _checkedAt = now;
            try
            {
                var info = new FileInfo(path);
                if (path == _path && info.Exists && info.LastWriteTimeUtc == _lastWrite && info.Length == _length)
                {
                    return _fileKeys;
                }

                var keys = Parse(File.ReadAllText(path));
                _fileKeys = [.. keys.Select(Encoding.UTF8.GetBytes)];
                (_path, _lastWrite, _length) = (path, info.LastWriteTimeUtc, info.Length);
                LogKeysLoaded(logger, keys.Count, path);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                if (_fileKeys.Length > 0 || _path != path)
                {
                    LogKeysUnreadable(logger, path, ex.Message);
                }

                (_path, _fileKeys, _length) = (path, [], -1);
            }

            return _fileKeys;
        }
    }

    [LoggerMessage(1, LogLevel.Information, "Loaded {Count} API keys from {Path}")]
    private static partial void LogKeysLoaded(ILogger logger, int count, string path);

    [LoggerMessage(2, LogLevel.Error, "The API keys file {Path} cannot be read ({Reason}); no key from it is accepted until it can")]
    private static partial void LogKeysUnreadable(ILogger logger, string path, string reason);
}
