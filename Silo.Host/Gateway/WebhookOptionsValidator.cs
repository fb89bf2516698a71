using Microsoft.Extensions.Options;

namespace FalHints.Host.Gateway;

/// <summary>Fails the start on a bad webhook setting, naming the setting.</summary>
internal sealed class WebhookOptionsValidator : IValidateOptions<WebhookOptions>
{
    public ValidateOptionsResult Validate(string? name, WebhookOptions options)
    {
        var failures = new List<string>();
        if (options.AllowedHosts.FirstOrDefault(e => !WebhookOptions.IsValidEntry(e)) is { } bad)
        {
            failures.Add($"{WebhookOptions.SectionName}:AllowedHosts holds '{bad}', which is not a host name, *.domain, IP address or CIDR range.");
        }

        if (options.MaxAttempts < 1 || options.FirstRetryDelay <= TimeSpan.Zero || options.MaxRetryDelay < options.FirstRetryDelay || options.Timeout <= TimeSpan.Zero)
        {
            failures.Add($"{WebhookOptions.SectionName}: MaxAttempts must be at least 1, FirstRetryDelay and Timeout positive, MaxRetryDelay at least FirstRetryDelay.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
