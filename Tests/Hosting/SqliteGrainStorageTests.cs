using FalHints.Client.Contracts;
using FalHints.Host.Hosting;
using FalHints.Router.Requests;
using FalHints.Router.Routing;
using FalHints.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Orleans.Serialization;
using Orleans.Storage;

namespace FalHints.Tests.Hosting;

/// <summary>The embedded default's request store on a real SQLite file, reopened as a restarted node would.</summary>
public sealed class SqliteGrainStorageTests : IDisposable
{
    private const string StateName = "request";
    private static readonly Serializer Serializer = new ServiceCollection()
        .AddSerializer(s => s.AddAssembly(typeof(RequestRecord).Assembly)).BuildServiceProvider().GetRequiredService<Serializer>();

    private readonly TempDirectory _data = new();
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 1, 12, 0, 0, TimeSpan.Zero));

    private string FilePath => Path.Combine(_data.Path, "requests.db");

    public void Dispose() => _data.Dispose();

    [Fact]
    public async Task A_record_survives_reopening_and_a_stale_version_is_refused()
    {
        var id = RequestGrainId("a");
        using (var storage = Open())
        {
            var state = Record("a", RequestState.Queued, _time.GetUtcNow());
            await storage.WriteStateAsync(StateName, id, state);
            var stale = new GrainState<RequestRecord>(state.State, state.ETag);
            await storage.WriteStateAsync(StateName, id, state);

            await Assert.ThrowsAsync<InconsistentStateException>(() => storage.WriteStateAsync(StateName, id, stale));
        }

        using var reopened = Open();
        var read = new GrainState<RequestRecord>();
        await reopened.ReadStateAsync(StateName, id, read);
        Assert.True(read.RecordExists);
        Assert.Equal("a", read.State!.Request!.RequestId);
        Assert.Equal(RequestState.Queued, read.State.State);
    }

    [Fact]
    public async Task Unfinished_requests_are_listed_oldest_accepted_first_and_finished_ones_are_not()
    {
        var now = _time.GetUtcNow();
        using (var storage = Open())
        {
            await storage.WriteStateAsync(StateName, RequestGrainId("late"), Record("late", RequestState.Queued, now.AddSeconds(3)));
            await storage.WriteStateAsync(StateName, RequestGrainId("running"), Record("running", RequestState.InProgress, now.AddSeconds(1)));
            await storage.WriteStateAsync(StateName, RequestGrainId("done"), Record("done", RequestState.Completed, now));
            await storage.WriteStateAsync(StateName, RequestGrainId("early"), Record("early", RequestState.Queued, now));
        }

        using var reopened = Open();
        Assert.Equal(["early", "running", "late"], await reopened.ListUnfinishedAsync(CancellationToken.None));
    }

    [Fact]
    public async Task Results_are_kept_for_the_retention_across_a_reopen_and_dropped_after()
    {
        var id = RequestGrainId("kept");
        using (var storage = Open())
        {
            await storage.WriteStateAsync(StateName, id, Record("kept", RequestState.Completed, _time.GetUtcNow()));
        }

        _time.Advance(TimeSpan.FromMinutes(59));
        using (var reopened = Open())
        {
            Assert.True(await ExistsAsync(reopened, id));
        }

        _time.Advance(TimeSpan.FromMinutes(2));
        using var later = Open();
        Assert.False(await ExistsAsync(later, id));
    }

    [Fact]
    public void A_second_node_on_the_same_file_is_refused_with_a_message_that_says_what_to_do()
    {
        using var first = Open();

        var error = Assert.Throws<InvalidOperationException>(() => Open());

        Assert.Contains("Another falhints node uses the request store", error.Message, StringComparison.Ordinal);
        Assert.Contains("--data", error.Message, StringComparison.Ordinal);
    }

    private SqliteGrainStorage Open() => new(FilePath, Serializer, Options.Create(new RouterOptions { ResultRetention = TimeSpan.FromHours(1) }), _time,
        NullLogger<SqliteGrainStorage>.Instance);

    private static GrainId RequestGrainId(string key) => GrainId.Create("request", key);

    private GrainState<RequestRecord> Record(string id, RequestState state, DateTimeOffset acceptedAt) => new(new RequestRecord
    {
        Request = new InferenceRequest(id, "tests/app", "{}", null),
        AcceptedAt = acceptedAt,
        State = state,
        CompletedAt = state == RequestState.Completed ? _time.GetUtcNow() : null,
        Result = state == RequestState.Completed ? new InferenceResult(id, "{}", null, "r", false, 1) : null,
    });

    private static async Task<bool> ExistsAsync(SqliteGrainStorage storage, GrainId id)
    {
        var read = new GrainState<RequestRecord>();
        await storage.ReadStateAsync(StateName, id, read);
        return read.RecordExists;
    }
}
