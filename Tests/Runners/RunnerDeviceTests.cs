using FalHints.Runner.Devices;
using FalHints.Runner.Hosting;
using FalHints.Runner.Pipelines;
using FalHints.Runner.Runners;

namespace FalHints.Tests.Runners;

/// <summary>Device names, runner slots that share a GPU, and how the budget is split between them.</summary>
public sealed class RunnerDeviceTests
{
    [Theory]
    [InlineData("cpu:0", true)]
    [InlineData("cuda:3", true)]
    [InlineData("cuda:0.1", true)]
    [InlineData("cpu:0.1", false)]
    [InlineData("cuda:0.", false)]
    [InlineData("cuda:0.1.2", false)]
    [InlineData("gpu:0", false)]
    [InlineData("cuda:0/1", false)]
    public void Device_names_allow_runner_slots_on_cuda_only(string device, bool valid) =>
        Assert.Equal(valid, DeviceNames.IsValid(device));

    [Fact]
    public void A_runner_slot_runs_on_its_physical_device()
    {
        Assert.Equal("cuda:2", DeviceNames.Physical("cuda:2.5"));
        Assert.Equal("cuda:2", DeviceNames.Physical("cuda:2"));
        Assert.Equal("cpu:1", DeviceNames.Physical("cpu:1"));
    }

    [Fact]
    public void Runners_listed_on_one_gpu_share_it_and_others_do_not()
    {
        var options = new RunnerOptions();
        foreach (var device in new[] { "cuda:0.0", "cuda:0.1", "cuda:0.2", "cuda:1" })
        {
            options.Devices.Add(device);
        }

        Assert.Equal(3, options.SharersOf("cuda:0.1"));
        Assert.Equal(1, options.SharersOf("cuda:1"));
        Assert.Equal(4, new RunnerOptions { RunnersPerGpu = 4 }.SharersOf("cuda:0.3"));
        Assert.Equal(1, new RunnerOptions { RunnersPerGpu = 4 }.SharersOf("cpu:0"));
    }

    [Fact]
    public void A_configured_budget_applies_to_each_runner_and_cpu_runners_get_the_default()
    {
        Assert.Equal(1L << 30, new RunnerOptions { PipelineBudgetBytes = 1L << 30, RunnersPerGpu = 4 }.BudgetFor("cuda:0.1", deviceBytes: 80L << 30));
        Assert.Equal(RunnerOptions.DefaultCpuBudgetBytes, new RunnerOptions().BudgetFor("cpu:0", deviceBytes: null));
    }

    [Fact]
    public void Unconfigured_gpu_runners_share_nine_tenths_of_their_devices_memory()
    {
        const long device = 80L << 30;

        Assert.Equal(device / 10 * 9 / 4, new RunnerOptions { RunnersPerGpu = 4 }.BudgetFor("cuda:0.1", device));
        Assert.Equal(device / 10 * 9, new RunnerOptions().BudgetFor("cuda:1", device));
    }

    [Fact]
    public void Gpu_runners_split_half_the_machine_memory_for_their_host_tier_and_cpu_runners_have_none()
    {
        const long machine = 128L << 30;

        Assert.Equal(16L << 30, new RunnerOptions().HostBudgetFor("cuda:0.2", gpuRunners: 4, machine));
        Assert.Equal(3L << 30, new RunnerOptions { HostBudgetBytes = 3L << 30 }.HostBudgetFor("cuda:1", gpuRunners: 8, machine));
        Assert.Equal(0, new RunnerOptions { HostBudgetBytes = 0 }.HostBudgetFor("cuda:0", gpuRunners: 1, machine));
        Assert.Equal(0, new RunnerOptions { HostBudgetBytes = 3L << 30 }.HostBudgetFor("cpu:0", gpuRunners: 0, machine));
    }

    [Fact]
    public void Bad_host_tier_and_loader_settings_are_refused_with_the_setting_named()
    {
        var result = new RunnerOptionsValidator().Validate(null, new RunnerOptions { HostBudgetBytes = -1, WeightLoader = (WeightLoader)7 });

        Assert.True(result.Failed);
        Assert.Contains(result.Failures!, f => f.Contains("FalHints:Runners:HostBudgetBytes must not be negative", StringComparison.Ordinal));
        Assert.Contains(result.Failures!, f => f.Contains("FalHints:Runners:WeightLoader must be Direct or PyBridge", StringComparison.Ordinal));
    }

    [Fact]
    public void Without_a_gpu_the_silo_hosts_the_configured_cpu_runners()
    {
        Assert.Equal<string>(["cpu:0", "cpu:1", "cpu:2"], RunnerStarter.ResolveDevices(new RunnerOptions { CpuRunners = 3, RunnersPerGpu = 2 }));
    }

    [Fact]
    public void Bad_runner_slot_settings_are_refused_with_the_setting_named()
    {
        var options = new RunnerOptions { RunnersPerGpu = 0 };
        options.Devices.Add("cuda:0.x");

        var result = new RunnerOptionsValidator().Validate(null, options);

        Assert.True(result.Failed);
        Assert.Contains(result.Failures!, f => f.Contains("RunnersPerGpu must be between 1 and 64", StringComparison.Ordinal));
        Assert.Contains(result.Failures!, f => f.Contains("'cuda:0.x' is not a device name", StringComparison.Ordinal));
    }
}
