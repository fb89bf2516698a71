using System.Text.RegularExpressions;

namespace FalHints.Runner.Devices;

/// <summary>
/// Device names as runners use them: <c>cpu:N</c>, <c>cuda:N</c>, or <c>cuda:N.S</c> for runner slot S of several
/// runners that share CUDA device N (each with its own thread and pipeline budget).
/// </summary>
public static partial class DeviceNames
{
    /// <summary>True for <c>cpu:N</c>, <c>cuda:N</c> and <c>cuda:N.S</c>.</summary>
    public static bool IsValid(string? device) => device is not null && Pattern().IsMatch(device);

    /// <summary>The physical device a runner device name stands for: <c>cuda:0.1</c> is <c>cuda:0</c>.</summary>
    public static string Physical(string device)
    {
        var dot = device.IndexOf('.', StringComparison.Ordinal);
        return dot < 0 ? device : device[..dot];
    }

    /// <summary>The TorchSharp device for a runner device name; every <c>cpu:N</c> maps to the CPU.</summary>
    public static TorchSharp.torch.Device ToTorch(string device) =>
        device.StartsWith("cuda:", StringComparison.Ordinal)
            ? TorchSharp.torch.device(Physical(device))
            : TorchSharp.torch.CPU;

    [GeneratedRegex(@"^(cpu:[0-9]{1,3}|cuda:[0-9]{1,3}(\.[0-9]{1,2})?)$", RegexOptions.CultureInvariant)]
    private static partial Regex Pattern();
}
