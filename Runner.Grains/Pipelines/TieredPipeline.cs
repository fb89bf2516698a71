namespace FalHints.Runner.Pipelines;

/// <summary>
/// A pipeline that can leave its device for host memory when the device needs room, and come back with only a copy
/// (a GPU runner's host tier; see <see cref="PipelineCache"/>).
/// </summary>
public interface ITieredPipeline : IDisposable
{
    /// <summary>Copies the weights into host memory; call on the device's thread. The pipeline itself stays valid.</summary>
    IWarmPipeline ToHost();
}

/// <summary>A pipeline's weights in host memory.</summary>
public interface IWarmPipeline : IDisposable
{
    /// <summary>Host memory held, in bytes.</summary>
    long HostBytes { get; }

    /// <summary>The pipeline again on its device; call on the device's thread. This copy stays valid.</summary>
    ITieredPipeline ToDevice();
}
