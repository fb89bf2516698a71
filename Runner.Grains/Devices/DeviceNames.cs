using System.Text.RegularExpressions;

namespace FalHints.Runner.Devices;

/// <summary>Device names as runners use them: <c>cpu:N</c> or <c>cuda:N</c>.</summary>
public static partial class DeviceNames
{
    /// <summary>True for <c>cpu:N</c> and <c>cuda:N</c>.</summary>
    public static bool IsValid(string? device) => device is not null && Pattern().IsMatch(device);

    /// <summary>The TorchSharp device for a runner device name; every <c>cpu:N</c> maps to the CPU.</summary>
    public static TorchSharp.torch.Device ToTorch(string device) =>
        device.StartsWith("cuda:", StringComparison.Ordinal)
            ? TorchSharp.torch.device(device)
            : TorchSharp.torch.CPU;

    [GeneratedRegex("^(cpu|cuda):[0-9]{1,3}$", RegexOptions.CultureInvariant)]
    private static partial Regex Pattern();
}
