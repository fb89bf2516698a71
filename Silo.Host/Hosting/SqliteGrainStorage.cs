using System.Globalization;
using System.Threading.Channels;
using FalHints.Router.Requests;
using FalHints.Router.Routing;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Serialization;
using Orleans.Storage;

namespace FalHints.Host.Hosting;

/// <summary>
/// Grain storage in one SQLite file: the embedded default's request store, so accepted requests survive a crash or a
/// restart of the node. Each write is committed to SQLite's write-ahead log and synced to disk before it returns, so
/// a request is stored before its submission is answered; writes that wait at the same moment share one transaction
/// and one sync (group commit). Request records also keep, in their own columns, whether they
/// are unfinished (and since when) and when their result expires: the node lists the unfinished ones at start
/// (<see cref="IUnfinishedRequests"/>) and drops expired results. Versions are checked as Orleans expects: a write
/// with a stale version fails with <see cref="InconsistentStateException"/>. One node uses a file at a time (a lock
/// file beside it says so).
/// </summary>
public sealed partial class SqliteGrainStorage : IGrainStorage, IUnfinishedRequests, IDisposable
{
    private static readonly TimeSpan PurgeInterval = TimeSpan.FromMinutes(5);
    private readonly Lock _gate = new();
    private readonly SqliteConnection _connection;
    private readonly FileStream _lock;
    private readonly Serializer _serializer;
    private readonly TimeSpan _retention;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ITimer _purge;
    private readonly Channel<PendingWrite> _pending = Channel.CreateUnbounded<PendingWrite>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Task _writer;

    /// <summary>Opens (creating if needed) the store at <paramref name="path"/> and takes its lock.</summary>
    /// <exception cref="InvalidOperationException">Another process holds the store.</exception>
    public SqliteGrainStorage(string path, Serializer serializer, IOptions<RouterOptions> options, TimeProvider time, ILogger<SqliteGrainStorage> logger)
    {
        Path = System.IO.Path.GetFullPath(path);
        (_serializer, _retention, _time, _logger) = (serializer, options.Value.ResultRetention, time, logger);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(Path)!);
        try
        {
            _lock = new FileStream(Path + ".lock", FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException ex)
        {
            throw new InvalidOperationException(
                $"Another falhints node uses the request store {Path}; give this one its own with --data DIR or {StorageSettings.SectionName}:Path.", ex);
        }

        _connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = Path, Pooling = false }.ToString());
        _connection.Open();
        Execute("""
            PRAGMA journal_mode = WAL;
            PRAGMA synchronous = FULL;
            CREATE TABLE IF NOT EXISTS grain_state (
                state_name TEXT NOT NULL,
                grain_id TEXT NOT NULL,
                version INTEGER NOT NULL,
                payload BLOB NOT NULL,
                unfinished_since INTEGER NULL,
                expires_at INTEGER NULL,
                PRIMARY KEY (state_name, grain_id));
            CREATE INDEX IF NOT EXISTS grain_state_unfinished ON grain_state (unfinished_since) WHERE unfinished_since IS NOT NULL;
            CREATE INDEX IF NOT EXISTS grain_state_expires ON grain_state (expires_at) WHERE expires_at IS NOT NULL;
            """);
        Purge();
        _purge = time.CreateTimer(_ => Purge(), null, PurgeInterval, PurgeInterval);
        _writer = Task.Run(WriteAsync);
    }

    /// <summary>The database file.</summary>
    public string Path { get; }

    /// <inheritdoc />
    public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) => Task.Run(() =>
    {
        lock (_gate)
        {
            using var command = Command("SELECT version, payload FROM grain_state WHERE state_name = $name AND grain_id = $id", stateName, grainId);
            using var reader = command.ExecuteReader();
            if (!reader.Read())
            {
                grainState.State = Activator.CreateInstance<T>();
                (grainState.ETag, grainState.RecordExists) = (null, false);
                return;
            }

            grainState.State = _serializer.Deserialize<T>((byte[])reader["payload"]);
            (grainState.ETag, grainState.RecordExists) = (reader.GetInt64(0).ToString(CultureInfo.InvariantCulture), true);
        }
    });

    /// <inheritdoc />
    public async Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        var payload = _serializer.SerializeToArray(grainState.State);
        var (unfinishedSince, expiresAt) = Describe(grainState.State);
        var version = grainState.ETag is null ? 0 : long.Parse(grainState.ETag, CultureInfo.InvariantCulture);
        var sql = grainState.ETag is null
            ? """
              INSERT INTO grain_state (state_name, grain_id, version, payload, unfinished_since, expires_at)
              VALUES ($name, $id, 1, $payload, $unfinished, $expires) ON CONFLICT DO NOTHING
              """
            : """
              UPDATE grain_state SET version = version + 1, payload = $payload, unfinished_since = $unfinished, expires_at = $expires
              WHERE state_name = $name AND grain_id = $id AND version = $version
              """;
        var write = new PendingWrite(sql, stateName, grainId.ToString(), payload, unfinishedSince, expiresAt, version);
        await _pending.Writer.WriteAsync(write);
        if (!await write.Done.Task)
        {
            throw new InconsistentStateException($"The stored {stateName} of {grainId} is not at version {grainState.ETag ?? "none"}; another activation wrote it, or it was removed.");
        }

        (grainState.ETag, grainState.RecordExists) = ((version + 1).ToString(CultureInfo.InvariantCulture), true);
    }

    /// <inheritdoc />
    public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) => Task.Run(() =>
    {
        lock (_gate)
        {
            using var command = Command("DELETE FROM grain_state WHERE state_name = $name AND grain_id = $id", stateName, grainId);
            command.ExecuteNonQuery();
        }

        grainState.State = Activator.CreateInstance<T>();
        (grainState.ETag, grainState.RecordExists) = (null, false);
    });

    /// <inheritdoc />
    public Task<IReadOnlyList<string>> ListUnfinishedAsync(CancellationToken cancellationToken) => Task.Run<IReadOnlyList<string>>(() =>
    {
        lock (_gate)
        {
            // Ties in acceptance time keep the order in which the requests were first stored.
            using var command = _connection.CreateCommand();
            command.CommandText = "SELECT grain_id FROM grain_state WHERE unfinished_since IS NOT NULL ORDER BY unfinished_since, rowid";
            using var reader = command.ExecuteReader();
            var ids = new List<string>();
            while (reader.Read())
            {
                cancellationToken.ThrowIfCancellationRequested();
                ids.Add(GrainId.Parse(reader.GetString(0)).Key.ToString()!);
            }

            return ids;
        }
    }, cancellationToken);

    /// <summary>True when the store answers a query (for the node's health).</summary>
    public bool IsReachable()
    {
        try
        {
            lock (_gate)
            {
                using var command = _connection.CreateCommand();
                command.CommandText = "SELECT 1";
                command.ExecuteScalar();
                return true;
            }
        }
        catch (SqliteException)
        {
            return false;
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _purge.Dispose();
        _pending.Writer.TryComplete();
        _writer.Wait();
        lock (_gate)
        {
            _connection.Dispose();
        }

        _lock.Dispose();
    }

    private (long? UnfinishedSince, long? ExpiresAt) Describe<T>(T state) => state switch
    {
        RequestRecord { Request: not null, State: not Client.Contracts.RequestState.Completed } request => (request.AcceptedAt.UtcTicks, null),

        // Finished, but its webhook is still owed: listed at start too, so it is delivered; by the time it finished, so
        // that the requests queued before it are handed back to their routers first.
        RequestRecord { WebhookPending: true, CompletedAt: { } completed } => (completed.UtcTicks, (completed + _retention).UtcTicks),
        RequestRecord { CompletedAt: { } completed } => (null, (completed + _retention).UtcTicks),
        _ => (null, null),
    };

    /// <summary>Writes whatever is waiting in one transaction, then tells each writer whether its version matched.</summary>
    private async Task WriteAsync()
    {
        var batch = new List<PendingWrite>();
        while (await _pending.Reader.WaitToReadAsync())
        {
            batch.Clear();
            while (_pending.Reader.TryRead(out var write))
            {
                batch.Add(write);
            }

            try
            {
                var applied = new bool[batch.Count];
                lock (_gate)
                {
                    using var transaction = _connection.BeginTransaction();
                    for (var i = 0; i < batch.Count; i++)
                    {
                        using var command = _connection.CreateCommand();
                        command.Transaction = transaction;
                        command.CommandText = batch[i].Sql;
                        command.Parameters.AddWithValue("$name", batch[i].StateName);
                        command.Parameters.AddWithValue("$id", batch[i].GrainId);
                        command.Parameters.AddWithValue("$payload", batch[i].Payload);
                        command.Parameters.AddWithValue("$unfinished", (object?)batch[i].UnfinishedSince ?? DBNull.Value);
                        command.Parameters.AddWithValue("$expires", (object?)batch[i].ExpiresAt ?? DBNull.Value);
                        command.Parameters.AddWithValue("$version", batch[i].Version);
                        applied[i] = command.ExecuteNonQuery() > 0;
                    }

                    transaction.Commit();
                }

                for (var i = 0; i < batch.Count; i++)
                {
                    batch[i].Done.TrySetResult(applied[i]);
                }
            }
            catch (Exception ex)
            {
                batch.ForEach(w => w.Done.TrySetException(ex));
            }
        }
    }

    private void Purge()
    {
        try
        {
            lock (_gate)
            {
                using var command = _connection.CreateCommand();
                command.CommandText = "DELETE FROM grain_state WHERE expires_at IS NOT NULL AND expires_at < $now";
                command.Parameters.AddWithValue("$now", _time.GetUtcNow().UtcTicks);
                var purged = command.ExecuteNonQuery();
                if (purged > 0)
                {
                    LogPurged(_logger, purged, Path);
                }
            }
        }
        catch (Exception ex) when (ex is SqliteException or ObjectDisposedException or InvalidOperationException)
        {
            LogPurgeFailed(_logger, ex, Path);
        }
    }

    private SqliteCommand Command(string sql, string stateName, GrainId grainId)
    {
        var command = _connection.CreateCommand();
        command.CommandText = sql;
        command.Parameters.AddWithValue("$name", stateName);
        command.Parameters.AddWithValue("$id", grainId.ToString());
        return command;
    }

    private void Execute(string sql)
    {
        using var command = _connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private sealed record PendingWrite(string Sql, string StateName, string GrainId, byte[] Payload, long? UnfinishedSince, long? ExpiresAt, long Version)
    {
        public TaskCompletionSource<bool> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    [LoggerMessage(1, LogLevel.Information, "Dropped {Count} expired results from the request store {Path}")]
    private static partial void LogPurged(ILogger logger, int count, string path);

    [LoggerMessage(2, LogLevel.Warning, "Could not drop expired results from the request store {Path}")]
    private static partial void LogPurgeFailed(ILogger logger, Exception exception, string path);
}
