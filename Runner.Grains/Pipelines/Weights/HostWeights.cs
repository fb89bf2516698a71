using TorchSharp;
using static TorchSharp.torch;

namespace FalHints.Runner.Pipelines.Weights;

/// <summary>
/// A module's weights kept in host memory, one tensor per state-dict entry, pinned when CUDA is available so that
/// copying them back to a device runs at the speed of the link and without blocking. What a GPU runner's host tier holds.
/// </summary>
public sealed class HostWeights : IDisposable
{
    private readonly Dictionary<string, Tensor> _tensors;

    private HostWeights(Dictionary<string, Tensor> tensors, bool pinned)
    {
        _tensors = tensors;
        Pinned = pinned;
        Bytes = tensors.Values.Sum(t => t.NumberOfElements * t.ElementSize);
    }

    /// <summary>Bytes held.</summary>
    public long Bytes { get; }

    /// <summary>True when the memory is pinned (page-locked).</summary>
    public bool Pinned { get; }

    /// <summary>Copies every state-dict entry of <paramref name="module"/> into host memory. Call on the module's device thread.</summary>
    public static HostWeights CopyOf(nn.Module module)
    {
        var pinned = cuda.is_available();
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            using var noGrad = no_grad();
            var cudaDevices = new HashSet<int>();
            foreach (var (name, source) in module.state_dict())
            {
                var host = Allocate(source.shape, source.dtype, pinned);
                tensors.Add(name, host);
                host.copy_(source, nonBlocking: pinned);
                if (source.device_type == DeviceType.CUDA)
                {
                    cudaDevices.Add(source.device_index);
                }
            }

            foreach (var index in cudaDevices)
            {
                cuda.synchronize(new Device(DeviceType.CUDA, index));
            }

            return new HostWeights(tensors, pinned);
        }
        catch
        {
            foreach (var tensor in tensors.Values)
            {
                tensor.Dispose();
            }

            throw;
        }
    }

    /// <summary>
    /// A new module from <paramref name="build"/> (on the meta device) with these weights on <paramref name="device"/>:
    /// only the copy to the device, no file and no initialisation. Call on the device's thread; these weights stay valid.
    /// </summary>
    public TModule ToDevice<TModule>(Func<Device, TModule> build, Device device)
        where TModule : nn.Module
    {
        var module = build(META);
        try
        {
            using var noGrad = no_grad();
            ModuleTensors.Replace(module, (name, current) =>
            {
                if (!_tensors.TryGetValue(name, out var host) || !host.shape.AsSpan().SequenceEqual(current.shape) || host.dtype != current.dtype)
                {
                    throw new InvalidOperationException($"The host copy has no tensor '{name}' of shape {SafetensorsHeader.Shape(current.shape)}.");
                }

                var target = empty(current.shape, dtype: current.dtype, device: device);
                return target.copy_(host, nonBlocking: Pinned && device.type == DeviceType.CUDA);
            });
            if (device.type == DeviceType.CUDA)
            {
                cuda.synchronize(device);
            }

            return module;
        }
        catch
        {
            module.Dispose();
            throw;
        }
    }

    /// <summary>Releases the host memory.</summary>
    public void Dispose()
    {
        foreach (var tensor in _tensors.Values)
        {
            tensor.Dispose();
        }

        _tensors.Clear();
    }

    private static Tensor Allocate(long[] shape, ScalarType type, bool pinned)
    {
        if (!pinned)
        {
            return empty(shape, dtype: type).DetachFromDisposeScope();
        }

        // TorchSharp's factories take no pin_memory flag: allocate, then pin (from LibTorch's caching host allocator).
        using var pageable = empty(shape, dtype: type);
        return pageable.pin_memory().DetachFromDisposeScope();
    }
}
