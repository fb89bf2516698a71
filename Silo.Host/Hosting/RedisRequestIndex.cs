using FalHints.Client.Contracts;
using FalHints.Router.Requests;
using Orleans.Storage;
using StackExchange.Redis;

namespace FalHints.Host.Hosting;

/// <summary>
/// The Redis request store with an index of the requests that are accepted and not finished: a sorted set (by
/// acceptance time) beside the records, since Redis cannot list its keys cheaply. An id is added before the record
/// of a new request is first written and removed once its record says it finished (and its webhook, if any, is
/// delivered or given up), so the index holds every
/// unfinished request (and, after a crash at the wrong moment, perhaps one that finished). A node that starts lists
/// it (<see cref="IUnfinishedRequests"/>) and hands every request back to its router, as the SQLite store's nodes
/// do, so a cluster that restarts whole resumes its requests without waiting for their callers to ask.
/// </summary>
/// <param name="records">Orleans' Redis grain storage, which writes the records.</param>
/// <param name="redis">The connection the index is kept over.</param>
/// <param name="serviceId">The cluster's service id: the index's key, like the records' keys, starts with it.</param>
public sealed class RedisRequestIndex(IGrainStorage records, Func<Task<IConnectionMultiplexer>> redis, string serviceId)
    : IGrainStorage, IUnfinishedRequests
{
    private readonly RedisKey _key = $"{serviceId}/falhints/unfinished";

    /// <inheritdoc />
    public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) =>
        records.ReadStateAsync(stateName, grainId, grainState);

    /// <inheritdoc />
    public async Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        var record = grainState.State as RequestRecord;
        if (record is { Request: not null, State: not RequestState.Completed } && grainState.ETag is null)
        {
            await (await Database()).SortedSetAddAsync(_key, Member(grainId), record.AcceptedAt.UtcTicks);
        }

        await records.WriteStateAsync(stateName, grainId, grainState);
        if (record is { State: RequestState.Completed, WebhookPending: false })
        {
            // Not waited for: an id left behind only costs a lookup at the next start.
            await (await Database()).SortedSetRemoveAsync(_key, Member(grainId), CommandFlags.FireAndForget);
        }
        else if (record is { WebhookPending: true, CompletedAt: { } completed })
        {
            // Listed by the time it finished, as SQLite lists it: behind the requests queued before it finished.
            await (await Database()).SortedSetAddAsync(_key, Member(grainId), completed.UtcTicks, CommandFlags.FireAndForget);
        }
    }

    /// <inheritdoc />
    public async Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        await records.ClearStateAsync(stateName, grainId, grainState);
        await (await Database()).SortedSetRemoveAsync(_key, Member(grainId));
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<string>> ListUnfinishedAsync(CancellationToken cancellationToken)
    {
        var members = await (await Database()).SortedSetRangeByRankAsync(_key).WaitAsync(cancellationToken);
        return [.. members.Select(m => GrainId.Parse(m.ToString()).Key.ToString()!)];
    }

    private static RedisValue Member(GrainId grainId) => grainId.ToString();

    private async Task<IDatabase> Database() => (await redis()).GetDatabase();
}
