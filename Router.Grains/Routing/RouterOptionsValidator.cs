using FalHints.Router.Placement;
using Microsoft.Extensions.Options;

namespace FalHints.Router.Routing;

/// <summary>Fails the silo's start on a bad router setting, naming the setting.</summary>
internal sealed class RouterOptionsValidator(PlacementPolicyCatalog policies) : IValidateOptions<RouterOptions>
{
    private const string Section = RouterOptions.SectionName;

    public ValidateOptionsResult Validate(string? name, RouterOptions options)
    {
        var failures = new List<string>();
        if (!policies.Contains(options.Policy))
        {
            failures.Add($"{Section}:Policy '{options.Policy}' names no registered placement policy (built in: {string.Join(", ", PlacementPolicies.Names)}).");
        }

        if (options.MaxAttempts < 1)
        {
            failures.Add($"{Section}:MaxAttempts must be at least 1, not {options.MaxAttempts}.");
        }

        if (options.HeadBypassLimit < 0)
        {
            failures.Add($"{Section}:HeadBypassLimit must not be negative, not {options.HeadBypassLimit}.");
        }

        if (options.MaxQueueLength < 1)
        {
            failures.Add($"{Section}:MaxQueueLength must be at least 1, not {options.MaxQueueLength}.");
        }

        foreach (var (setting, value) in new[]
        {
            (nameof(RouterOptions.DiscoveryTimeout), options.DiscoveryTimeout),
            (nameof(RouterOptions.RunnerTimeout), options.RunnerTimeout),
            (nameof(RouterOptions.SweepInterval), options.SweepInterval),
            (nameof(RouterOptions.ResumeInterval), options.ResumeInterval),
            (nameof(RouterOptions.InFlightCheckInterval), options.InFlightCheckInterval),
            (nameof(RouterOptions.ResultRetention), options.ResultRetention),
        })
        {
            if (value <= TimeSpan.Zero)
            {
                failures.Add($"{Section}:{setting} must be positive, not {value}.");
            }
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
