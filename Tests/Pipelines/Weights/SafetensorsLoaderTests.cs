using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using CsCheck;
using FalHints.Client.Contracts;
using FalHints.Runner.Devices;
using FalHints.Runner.Models;
using FalHints.Runner.Pipelines;
using FalHints.Runner.Pipelines.Weights;
using FalHints.Tests.Support;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace FalHints.Tests.Pipelines.Weights;

public sealed class SafetensorsLoaderTests : IClassFixture<TinyModelStore>, IDisposable
{
    private const string Model = "bad/model";
    private readonly TinyModelStore _fixture;
    private readonly DeviceExecutor _device = new("cpu:0");

    public SafetensorsLoaderTests(TinyModelStore fixture) => _fixture = fixture;

    public void Dispose() => _device.Dispose();

    [Theory]
    [InlineData("tiny/alpha", "a red fox")]
    [InlineData("tiny/alpha", "a blue whale at dusk")]
    [InlineData("tiny/beta", "a red fox")]
    public void Loaded_pipeline_renders_exactly_what_the_PyBridge_loader_gives(string modelId, string prompt)
    {
        var model = _fixture.Store.Resolve(modelId);
        using var direct = TextToImagePipeline.Load(model, CPU);
        using var pyBridge = TextToImagePipeline.Load(model, CPU, WeightLoader.PyBridge);

        Assert.Equal(pyBridge.Render(prompt).Pixels, direct.Render(prompt).Pixels);
    }

    [Fact]
    public void Loaded_network_holds_the_very_bytes_of_the_file_for_every_tensor()
    {
        var model = _fixture.Store.Resolve("tiny/gamma");
        var config = TextToImageConfig.Read(model);
        using var direct = SafetensorsLoader.Load(model.WeightsPath, on => new TextToImageNet(config, on), CPU);
        using var reference = new TextToImageNet(config);
        reference.load_safetensors(model.WeightsPath);

        var loaded = direct.state_dict();
        foreach (var (name, tensor) in reference.state_dict())
        {
            Assert.Equal(tensor.bytes.ToArray(), loaded[name].bytes.ToArray());
        }

        Assert.Equal(reference.state_dict().Keys.Order(), loaded.Keys.Order());
    }

    [Theory]
    [InlineData(4096, 1)]
    [InlineData(4096, 3)]
    [InlineData(1 << 20, 2)]
    public void Staged_reads_in_chunks_fill_every_tensor_with_its_bytes(int chunkBytes, int readers)
    {
        // The CUDA path (batches of chunks read by several readers while the previous batch is copied), run on the CPU.
        var model = _fixture.Store.Resolve("tiny/gamma");
        var config = TextToImageConfig.Read(model);
        using var staging = new StagedReader(chunkBytes, readers);
        using var staged = SafetensorsLoader.Load(model.WeightsPath, on => new TextToImageNet(config, on), CPU, staging);
        using var direct = SafetensorsLoader.Load(model.WeightsPath, on => new TextToImageNet(config, on), CPU);

        var expected = direct.state_dict();
        foreach (var (name, tensor) in staged.state_dict())
        {
            Assert.Equal(expected[name].bytes.ToArray(), tensor.bytes.ToArray());
        }
    }

    [Fact]
    public async Task Truncated_weights_fail_naming_the_tensor_cut_short()
    {
        // The first tensor's bytes start right after the header; keep 1,000 of them.
        var error = await LoadDamagedAsync(bytes => bytes[..(8 + (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes) + 1000)]);

        Assert.Contains("tensor 'embed.weight' ends at byte", error.Message, StringComparison.Ordinal);
        Assert.Contains("truncated", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Header_length_past_the_end_of_the_file_fails_without_allocating_it()
    {
        var error = await LoadDamagedAsync(bytes =>
        {
            BinaryPrimitives.WriteUInt64LittleEndian(bytes, 2_000_000_000);
            return bytes;
        });

        Assert.Contains("the header length is 2000000000 bytes", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Tensor_whose_offsets_span_more_bytes_than_its_shape_fails_naming_it()
    {
        var error = await LoadRewrittenAsync(header =>
        {
            var offsets = header["conv_in.bias"]!["data_offsets"]!.AsArray();
            offsets[1] = offsets[1]!.GetValue<long>() + 4;
        });

        Assert.Contains("tensor 'conv_in.bias' spans 196 bytes, but F32 of shape [48] takes 192", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Misnamed_tensor_fails_naming_the_missing_and_the_unexpected_name()
    {
        var error = await LoadRewrittenAsync(header =>
        {
            var entry = header["condition.weight"]!;
            header.Remove("condition.weight");
            header["condition.weigth"] = entry;
        });

        Assert.Contains("it has no tensor 'condition.weight'", error.Message, StringComparison.Ordinal);
        Assert.Contains("unexpected tensor 'condition.weigth'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Wrongly_typed_tensor_fails_naming_both_types()
    {
        // I32 has the size of F32, so only the type is wrong.
        var error = await LoadRewrittenAsync(header => header["condition.weight"]!["dtype"] = "I32");

        Assert.Contains("tensor 'condition.weight' is I32, the model expects F32", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Tensor_of_another_shape_fails_naming_both_shapes()
    {
        var error = await LoadRewrittenAsync(header => header["condition.weight"]!["shape"] = new JsonArray(256, 48));

        Assert.Contains("tensor 'condition.weight' has shape [256, 48], the model expects [48, 256]", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Overlapping_tensors_fail_naming_both()
    {
        var error = await LoadRewrittenAsync(header =>
        {
            var weightStart = header["condition.weight"]!["data_offsets"]![0]!.GetValue<long>();
            header["condition.bias"]!["data_offsets"] = new JsonArray(weightStart + 4, weightStart + 4 + 192);
        });

        Assert.Contains("tensors 'condition.weight' and 'condition.bias' overlap", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unsupported_dtype_fails_naming_it()
    {
        var error = await LoadRewrittenAsync(header => header["to_rgb.bias"]!["dtype"] = "F8_E4M3");

        Assert.Contains("tensor 'to_rgb.bias' has the unsupported dtype 'F8_E4M3'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Header_that_is_not_json_fails_saying_so()
    {
        var error = await LoadDamagedAsync(bytes =>
        {
            bytes[8] = (byte)'#';
            return bytes;
        });

        Assert.Contains("the header is not valid JSON", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Any_damage_to_a_header_is_read_or_refused_as_a_format_error_and_nothing_else()
    {
        var model = _fixture.Store.Resolve("tiny/alpha");
        var original = File.ReadAllBytes(model.WeightsPath);
        var headerEnd = 8 + (int)BinaryPrimitives.ReadUInt64LittleEndian(original);
        using var directory = new TempDirectory();
        var path = Path.Combine(directory.Path, "fuzzed.safetensors");
        var damage = Gen.Select(Gen.Int[0, headerEnd - 1], Gen.Byte, Gen.Int[1, 4], Gen.Int[headerEnd, original.Length]);

        damage.Sample((position, value, count, length) =>
        {
            var bytes = original[..length];
            for (var i = position; i < Math.Min(position + count, headerEnd); i++)
            {
                bytes[i] = value;
            }

            File.WriteAllBytes(path, bytes);
            using var file = File.OpenHandle(path);
            try
            {
                var header = SafetensorsHeader.Read(file);
                Assert.All(header.Tensors, t => Assert.True(t.Offset >= header.DataStart && t.Offset + t.Length <= header.FileLength));
            }
            catch (WeightsFormatException)
            {
            }
        }, iter: 300);
    }

    [Fact]
    public void Header_with_metadata_and_empty_tensors_is_read()
    {
        using var directory = new TempDirectory();
        var path = Path.Combine(directory.Path, "w.safetensors");
        WriteFile(path, new JsonObject
        {
            ["__metadata__"] = new JsonObject { ["format"] = "pt" },
            ["a"] = Entry("F32", [2], 0, 8),
            ["empty"] = Entry("F32", [0], 8, 8),
            ["b"] = Entry("BF16", [2, 2], 8, 16),
        }, new byte[16]);

        using var file = File.OpenHandle(path);
        var header = SafetensorsHeader.Read(file);

        Assert.Equal(["a", "empty", "b"], header.Tensors.Select(t => t.Name));
        Assert.Equal((ScalarType.BFloat16, 4L, 8L), (header.Tensors[2].Type, header.Tensors[2].Elements, header.Tensors[2].Length));
    }

    [Fact]
    public void Any_module_loads_its_parameters_direct_fields_and_buffers()
    {
        using var directory = new TempDirectory();
        var path = Path.Combine(directory.Path, "w.safetensors");
        using (var written = new MixedModule(CPU))
        {
            written.save_safetensors(path);
        }

        using var expected = new MixedModule(CPU);
        expected.load_safetensors(path);
        using var staging = new StagedReader(64, 2);
        using var loaded = SafetensorsLoader.Load(path, on => new MixedModule(on), CPU);
        using var staged = SafetensorsLoader.Load(path, on => new MixedModule(on), CPU, staging);

        foreach (var module in new[] { loaded, staged })
        {
            var state = module.state_dict();
            Assert.Equal<string>(["linear.bias", "linear.weight", "offset", "scale", "steps"], [.. state.Keys.Order(StringComparer.Ordinal)]);
            foreach (var (name, tensor) in expected.state_dict())
            {
                Assert.Equal((DeviceType.CPU, tensor.dtype), (state[name].device_type, state[name].dtype));
                Assert.Equal(tensor.bytes.ToArray(), state[name].bytes.ToArray());
            }

            using var input = ones(1, 3);
            Assert.Equal(expected.forward(input).data<float>().ToArray(), module.forward(input).data<float>().ToArray());
        }
    }

    private static JsonObject Entry(string dtype, long[] shape, long begin, long end) => new()
    {
        ["dtype"] = dtype,
        ["shape"] = new JsonArray([.. shape.Select(d => (JsonNode)d)]),
        ["data_offsets"] = new JsonArray(begin, end),
    };

    private static void WriteFile(string path, JsonObject header, byte[] data)
    {
        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        var bytes = new byte[8 + json.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)json.Length);
        json.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + json.Length);
        File.WriteAllBytes(path, bytes);
    }

    /// <summary>Rewrites a fresh model's safetensors header (the tensor bytes stay as they are) and loads it.</summary>
    private Task<ModelStoreException> LoadRewrittenAsync(Action<JsonObject> rewrite) => LoadDamagedAsync(bytes =>
    {
        var length = (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        var header = JsonNode.Parse(bytes.AsSpan(8, length))!.AsObject();
        rewrite(header);
        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        var rewritten = new byte[8 + json.Length + (bytes.Length - 8 - length)];
        BinaryPrimitives.WriteUInt64LittleEndian(rewritten, (ulong)json.Length);
        json.CopyTo(rewritten, 8);
        bytes.AsSpan(8 + length).CopyTo(rewritten.AsSpan(8 + json.Length));
        return rewritten;
    });

    /// <summary>
    /// Writes a fresh model, lets <paramref name="damage"/> change its weights file, loads it through a runner's pipeline
    /// cache as a request would, and returns the error after checking that it is model_corrupt and left nothing cached.
    /// </summary>
    private async Task<ModelStoreException> LoadDamagedAsync(Func<byte[], byte[]> damage)
    {
        using var directory = new TempDirectory();
        var store = new ModelStore(directory.Path);
        DemoModels.Fill(store, [new DemoModelSpec(Model, 256 << 10)]);
        var path = Path.Combine(directory.Path, Model, ModelStore.WeightsFileName);
        await File.WriteAllBytesAsync(path, damage(await File.ReadAllBytesAsync(path)));
        var model = store.Resolve(Model);
        var shared = new PipelineCache(1 << 30, _device, TimeProvider.System);
        var cache = shared.For("o/app");

        var error = await Assert.ThrowsAsync<ModelStoreException>(() => cache.AcquireAsync(Model, model.WeightBytes,
            () => _device.RunAsync(() => TextToImagePipeline.Load(model, CPU)), CancellationToken.None));

        Assert.Equal(ErrorCodes.ModelCorrupt, error.Code);
        Assert.StartsWith($"Model '{Model}' has unreadable weights", error.Message, StringComparison.Ordinal);
        Assert.Empty(cache.Keys);
        Assert.Empty(cache.Loading);
        Assert.Equal((0L, 0L), (shared.Usage().BytesUsed, shared.Usage().Loads));
        return error;
    }

    /// <summary>A module with a submodule, a parameter held in a field of its own and persistent buffers of two types.</summary>
    private sealed class MixedModule : nn.Module<Tensor, Tensor>
    {
        private readonly Linear linear;
        private readonly Parameter scale;
        private readonly Tensor offset;
        private readonly Tensor steps;

        public MixedModule(Device device)
            : base(nameof(MixedModule))
        {
            linear = nn.Linear(3, 2, device: device);
            scale = new Parameter(rand(2, device: device));
            offset = rand(2, device: device);
            steps = randint(0, 1000, [7], dtype: ScalarType.Int64, device: device);
            RegisterComponents();
        }

        public override Tensor forward(Tensor input) => (linear.forward(input) * scale + offset) * steps.sum();
    }
}
