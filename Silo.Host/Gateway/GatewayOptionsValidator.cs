using Microsoft.Extensions.Options;

namespace FalHints.Host.Gateway;

/// <summary>Fails the start on a bad gateway setting, naming the setting.</summary>
internal sealed class GatewayOptionsValidator : IValidateOptions<GatewayOptions>
{
    private const string Section = GatewayOptions.SectionName;

    public ValidateOptionsResult Validate(string? name, GatewayOptions options)
    {
        var failures = new List<string>();
        if (!Uri.TryCreate(options.Url, UriKind.Absolute, out _))
        {
            failures.Add($"{Section}:Url '{options.Url}' is not an absolute URL such as {GatewayOptions.DefaultUrl}.");
        }

        if (options.MaxBodyBytes <= 0 || options.FileCacheBytes <= 0)
        {
            failures.Add($"{Section}:MaxBodyBytes and FileCacheBytes must be positive.");
        }

        if (options.StorageUnavailableWait <= TimeSpan.Zero || options.StorageUnavailableWait > TimeSpan.FromMinutes(1))
        {
            failures.Add($"{Section}:StorageUnavailableWait must be above 0 and at most 00:01:00, not {options.StorageUnavailableWait}.");
        }

        if (options.MaxDrainBytes < 0 || options.MaxRequestLineBytes <= 0 || options.MaxHeaderBytes <= 0)
        {
            failures.Add($"{Section}:MaxDrainBytes must not be negative, MaxRequestLineBytes and MaxHeaderBytes must be positive.");
        }

        if (options.ApiKeys.Any(string.IsNullOrWhiteSpace))
        {
            failures.Add($"{Section}:ApiKeys must not hold empty keys.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
