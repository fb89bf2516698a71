using FalHints.Runner.Devices;
using FalHints.Runner.Pipelines;
using Microsoft.Extensions.Options;

namespace FalHints.Runner.Runners;

/// <summary>Fails the silo's start on a bad runner setting, naming the setting.</summary>
internal sealed class RunnerOptionsValidator : IValidateOptions<RunnerOptions>
{
    public ValidateOptionsResult Validate(string? name, RunnerOptions options)
    {
        var failures = new List<string>();
        failures.AddRange(options.Devices.Where(d => !DeviceNames.IsValid(d))
            .Select(d => $"{RunnerOptions.SectionName}:Devices: '{d}' is not a device name (expected cpu:N, cuda:N or cuda:N.S)."));
        if (options.Devices.Distinct(StringComparer.Ordinal).Count() != options.Devices.Count)
        {
            failures.Add($"{RunnerOptions.SectionName}:Devices lists a device twice.");
        }

        if (options.CpuRunners is < 0 or > 256)
        {
            failures.Add($"{RunnerOptions.SectionName}:CpuRunners must be between 0 and 256, not {options.CpuRunners}.");
        }

        if (options.RunnersPerGpu is < 1 or > 64)
        {
            failures.Add($"{RunnerOptions.SectionName}:RunnersPerGpu must be between 1 and 64, not {options.RunnersPerGpu}.");
        }

        if (options.HeartbeatInterval <= TimeSpan.Zero)
        {
            failures.Add($"{RunnerOptions.SectionName}:HeartbeatInterval must be positive, not {options.HeartbeatInterval}.");
        }

        if (options.DrainTimeout < TimeSpan.Zero)
        {
            failures.Add($"{RunnerOptions.SectionName}:DrainTimeout must not be negative, not {options.DrainTimeout}.");
        }

        if (options.PipelineBudgetBytes is <= 0)
        {
            failures.Add($"{RunnerOptions.SectionName}:PipelineBudgetBytes must be positive, not {options.PipelineBudgetBytes}.");
        }

        if (options.HostBudgetBytes is < 0)
        {
            failures.Add($"{RunnerOptions.SectionName}:HostBudgetBytes must not be negative, not {options.HostBudgetBytes}.");
        }

        if (!Enum.IsDefined(options.WeightLoader))
        {
            failures.Add($"{RunnerOptions.SectionName}:WeightLoader must be {string.Join(" or ", Enum.GetNames<WeightLoader>())}, not {options.WeightLoader}.");
        }

        if (options.MaxHints < 1)
        {
            failures.Add($"{RunnerOptions.SectionName}:MaxHints must be at least 1, not {options.MaxHints}.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
