using System.Net;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace FalHints.Host.Hosting;

/// <summary>This silo's name and endpoints (section <c>FalHints:Silo</c>); read before the host is built, since they choose its endpoints.</summary>
public sealed class SiloSettings
{
    /// <summary>The configuration section.</summary>
    public const string SectionName = "FalHints:Silo";

    /// <summary>The silo-to-silo port unless configured.</summary>
    public const int DefaultSiloPort = 11111;

    /// <summary>The Orleans client port (Orleans' "gateway" port) unless configured, for silos and for the clients of a localhost cluster.</summary>
    public const int DefaultGatewayPort = 30000;

    /// <summary>The silo's name, unique in the cluster; unset: the machine's name.</summary>
    public string? Name { get; set; }

    /// <summary>The silo-to-silo port.</summary>
    public int SiloPort { get; set; } = DefaultSiloPort;

    /// <summary>The Orleans client port, where clients and the command line connect.</summary>
    public int GatewayPort { get; set; } = DefaultGatewayPort;

    /// <summary>The IP address other silos and clients reach this silo at (Redis mode); unset: this host's address.</summary>
    public string? AdvertisedAddress { get; set; }

    /// <summary>The name in use: <see cref="Name"/>, else the machine's name.</summary>
    public string EffectiveName => string.IsNullOrWhiteSpace(Name) ? Environment.MachineName : Name;

    /// <summary>Reads and checks the section; a bad setting is an error that names it.</summary>
    public static SiloSettings From(IConfiguration configuration)
    {
        var settings = configuration.GetSection(SectionName).Get<SiloSettings>() ?? new SiloSettings();
        var result = new SiloSettingsValidator().Validate(null, settings);
        return result.Failed ? throw new OptionsValidationException(SectionName, typeof(SiloSettings), result.Failures) : settings;
    }
}

/// <summary>Checks <see cref="SiloSettings"/>, naming the setting at fault.</summary>
internal sealed class SiloSettingsValidator : IValidateOptions<SiloSettings>
{
    public ValidateOptionsResult Validate(string? name, SiloSettings options)
    {
        var failures = new List<string>();
        foreach (var (setting, port) in new[] { (nameof(SiloSettings.SiloPort), options.SiloPort), (nameof(SiloSettings.GatewayPort), options.GatewayPort) })
        {
            if (port is < 0 or > 65535)
            {
                failures.Add($"{SiloSettings.SectionName}:{setting} is {port}, which is not a TCP port (0-65535).");
            }
        }

        if (!string.IsNullOrWhiteSpace(options.AdvertisedAddress) && !IPAddress.TryParse(options.AdvertisedAddress, out _))
        {
            failures.Add($"{SiloSettings.SectionName}:AdvertisedAddress '{options.AdvertisedAddress}' is not an IP address.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
