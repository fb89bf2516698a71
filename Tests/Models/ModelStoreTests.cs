using FalHints.Client.Contracts;
using FalHints.Runner.Models;
using FalHints.Tests.Support;

namespace FalHints.Tests.Models;

public sealed class ModelStoreTests : IClassFixture<TinyModelStore>
{
    private readonly TinyModelStore _fixture;

    public ModelStoreTests(TinyModelStore fixture) => _fixture = fixture;

    [Theory]
    [InlineData("", "empty")]
    [InlineData("/etc/passwd", "URL or a drive path|absolute")]
    [InlineData("../secrets", "'..'")]
    [InlineData("tiny/../../etc", "'..'")]
    [InlineData("tiny/a..b", "'..'")]
    [InlineData("https://hub.example/model", "URL")]
    [InlineData("file:tiny/alpha", "URL")]
    [InlineData("tiny/al\0pha", "control characters")]
    [InlineData("tiny/al\npha", "control characters")]
    [InlineData("~/models/x", "absolute path")]
    [InlineData("just-a-name", "owner/name")]
    [InlineData("a/b/c", "owner/name")]
    [InlineData("tiny/.hidden", "owner/name")]
    public void Refuses_ids_that_are_not_owner_slash_name_inside_the_store(string id, string reason)
    {
        var error = Assert.Throws<ModelStoreException>(() => _fixture.Store.Resolve(id));

        Assert.Equal(ErrorCodes.InvalidInput, error.Code);
        Assert.Matches(reason, error.Message);
    }

    [Fact]
    public void Refuses_overlong_ids()
    {
        var error = Assert.Throws<ModelStoreException>(() => _fixture.Store.Resolve("a/" + new string('b', 300)));

        Assert.Contains("characters long", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unknown_model_is_reported_as_not_found_with_its_id()
    {
        var error = Assert.Throws<ModelStoreException>(() => _fixture.Store.Resolve("tiny/missing"));

        Assert.Equal(ErrorCodes.ModelNotFound, error.Code);
        Assert.Contains("'tiny/missing'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Symlink_leaving_the_store_is_refused()
    {
        using var outside = new TempDirectory();
        using var storeDirectory = new TempDirectory();
        Directory.CreateDirectory(Path.Combine(storeDirectory.Path, "evil"));
        Directory.CreateSymbolicLink(Path.Combine(storeDirectory.Path, "evil", "link"), outside.Path);
        var store = new ModelStore(storeDirectory.Path);

        var error = Assert.Throws<ModelStoreException>(() => store.Resolve("evil/link"));

        Assert.Equal(ErrorCodes.InvalidInput, error.Code);
        Assert.Contains("outside the model store", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_owner_folder_linked_outside_the_store_is_refused_and_not_listed()
    {
        using var outside = new TempDirectory();
        using var storeDirectory = new TempDirectory();
        DemoModels.Fill(new ModelStore(outside.Path), [new DemoModelSpec("ext/m", 64 << 10)]);
        Directory.CreateSymbolicLink(Path.Combine(storeDirectory.Path, "ext"), Path.Combine(outside.Path, "ext"));
        var store = new ModelStore(storeDirectory.Path);

        var error = Assert.Throws<ModelStoreException>(() => store.Resolve("ext/m"));

        Assert.Equal(ErrorCodes.InvalidInput, error.Code);
        Assert.Contains("outside the model store", error.Message, StringComparison.Ordinal);
        Assert.Empty(store.List());
    }

    [Fact]
    public void A_weights_file_linked_within_the_store_is_served_with_the_size_of_its_target()
    {
        // A Hugging Face cache layout: the model folder holds links into a folder of blobs.
        using var storeDirectory = new TempDirectory();
        var store = new ModelStore(storeDirectory.Path);
        DemoModels.Fill(store, [new DemoModelSpec("blobs/original", 64 << 10)]);
        var blob = Path.Combine(storeDirectory.Path, "blobs", "original", ModelStore.WeightsFileName);
        var model = Directory.CreateDirectory(Path.Combine(storeDirectory.Path, "hf", "linked")).FullName;
        File.Copy(Path.Combine(storeDirectory.Path, "blobs", "original", ModelStore.ConfigFileName), Path.Combine(model, ModelStore.ConfigFileName));
        File.CreateSymbolicLink(Path.Combine(model, ModelStore.WeightsFileName), Path.Combine("..", "..", "blobs", "original", ModelStore.WeightsFileName));

        var resolved = store.Resolve("hf/linked");

        Assert.Equal(new FileInfo(blob).Length, resolved.WeightBytes);
        Assert.Contains("hf/linked", store.List().Select(m => m.Id));
    }

    [Fact]
    public void A_weights_file_linked_outside_the_store_is_refused()
    {
        using var outside = new TempDirectory();
        using var storeDirectory = new TempDirectory();
        DemoModels.Fill(new ModelStore(outside.Path), [new DemoModelSpec("far/away", 64 << 10)]);
        var store = new ModelStore(storeDirectory.Path);
        DemoModels.Fill(store, [new DemoModelSpec("near/model", 64 << 10)]);
        var weights = Path.Combine(storeDirectory.Path, "near", "model", ModelStore.WeightsFileName);
        File.Delete(weights);
        File.CreateSymbolicLink(weights, Path.Combine(outside.Path, "far", "away", ModelStore.WeightsFileName));

        var error = Assert.Throws<ModelStoreException>(() => store.Resolve("near/model"));

        Assert.Contains("outside the model store", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Lists_the_complete_models_in_id_order()
    {
        var listed = _fixture.Store.List().Select(m => m.Id);

        Assert.Equal(TinyModelStore.ModelIds.Order(StringComparer.Ordinal), listed);
    }

    [Fact]
    public void Fill_is_deterministic_and_keeps_models_already_present()
    {
        using var first = new TempDirectory();
        using var second = new TempDirectory();
        var reports = new List<DemoModelProgress>();
        DemoModelSpec[] specs = [new("demo/one", 128 << 10), new("demo/two", 128 << 10)];

        DemoModels.Fill(new ModelStore(first.Path), specs, new Recorder(reports));
        DemoModels.Fill(new ModelStore(second.Path), specs);
        DemoModels.Fill(new ModelStore(first.Path), specs, new Recorder(reports));

        Assert.Equal(
            File.ReadAllBytes(Path.Combine(first.Path, "demo/one", ModelStore.WeightsFileName)),
            File.ReadAllBytes(Path.Combine(second.Path, "demo/one", ModelStore.WeightsFileName)));
        Assert.NotEqual(
            File.ReadAllBytes(Path.Combine(first.Path, "demo/one", ModelStore.WeightsFileName)),
            File.ReadAllBytes(Path.Combine(first.Path, "demo/two", ModelStore.WeightsFileName)));
        Assert.Equal(
            [DemoModelStage.Writing, DemoModelStage.Written, DemoModelStage.Writing, DemoModelStage.Written, DemoModelStage.AlreadyPresent, DemoModelStage.AlreadyPresent],
            reports.Select(r => r.Stage));
        Assert.Equal(reports[^1].BytesTotal, reports[^1].BytesDone);
        Assert.Empty(Directory.GetDirectories(first.Path, ".staging-*"));
    }

    private sealed class Recorder(List<DemoModelProgress> reports) : IProgress<DemoModelProgress>
    {
        public void Report(DemoModelProgress value) => reports.Add(value);
    }
}
