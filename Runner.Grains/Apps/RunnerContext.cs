using FalHints.Runner.Devices;
using FalHints.Runner.Models;
using FalHints.Runner.Pipelines;

namespace FalHints.Runner.Apps;

/// <summary>What an app gets from the runner that hosts it.</summary>
/// <param name="RunnerId">The runner, <c>{silo}/{device}</c>.</param>
/// <param name="Device">The runner's device, <c>cpu:N</c>, <c>cuda:N</c> or <c>cuda:N.S</c> (a runner slot sharing GPU N).</param>
/// <param name="Executor">The device's thread: run all tensor work through it.</param>
/// <param name="Models">The local model store.</param>
/// <param name="Pipelines">The app's share of the runner's pipeline cache (memory budget, LRU, single-flight loads).</param>
/// <param name="Loader">How the runner reads weights from the model store.</param>
public sealed record RunnerContext(string RunnerId, string Device, DeviceExecutor Executor, ModelStore Models, AppPipelineCache Pipelines,
    WeightLoader Loader = WeightLoader.Direct)
{
    /// <summary>The TorchSharp device for <see cref="Device"/>.</summary>
    public TorchSharp.torch.Device TorchDevice => DeviceNames.ToTorch(Device);
}
