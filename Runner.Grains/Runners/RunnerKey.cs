using System.Diagnostics.CodeAnalysis;
using FalHints.Runner.Devices;

namespace FalHints.Runner;

/// <summary>A runner's identity: the silo it is pinned to and its device; as a grain key <c>{silo}/{device}</c>.</summary>
public readonly record struct RunnerKey(string Silo, string Device)
{
    /// <summary>Parses <c>{silo}/{device}</c>; the silo name may itself hold '/', the device may not.</summary>
    public static bool TryParse(string? key, [NotNullWhen(true)] out RunnerKey? runner)
    {
        runner = null;
        var slash = key?.LastIndexOf('/') ?? -1;
        if (slash <= 0 || !DeviceNames.IsValid(key![(slash + 1)..]))
        {
            return false;
        }

        runner = new RunnerKey(key[..slash], key[(slash + 1)..]);
        return true;
    }

    /// <inheritdoc />
    public override string ToString() => $"{Silo}/{Device}";
}
