using FalHints.Benchmarks.Simulation;

namespace FalHints.Tests.Simulation;

/// <summary>The router's core recovers every request from each failure, in virtual time.</summary>
public sealed class FailoverSimulatorTests
{
    private static readonly Workload Work = Workloads.BuiltIn("zipf", seed: 3, requests: 2_000, runners: 8, utilisation: 0.5);

    private static double Middle => Work.Requests[^1].ArrivalMs / 2;

    [Fact]
    public void A_runner_death_loses_no_request_and_retries_its_requests_once_the_membership_declares_it_dead()
    {
        var result = FailoverSimulator.Run(Work, new FailureScenario("death", Middle, null, 0, 0, DetectionMs: 10_000), seed: 3);

        Assert.Equal((2_000, 0, 0), (result.Completed, result.Failed, result.Unfinished));
        Assert.True(result.Affected > 0);
        Assert.Equal(result.Affected, result.Retries);

        // Retried after the detection, at the next sweep (1 s), then run again.
        Assert.InRange(result.RecoveryP50Ms, 10_000, 20_000);
    }

    [Fact]
    public void Lost_reports_free_their_slots_and_lost_results_are_run_again()
    {
        var result = FailoverSimulator.Run(Work, new FailureScenario("lost", null, null, LostNoticeShare: 0.002, LostResultShare: 0.002, DetectionMs: 10_000), seed: 3);

        Assert.Equal((2_000, 0, 0), (result.Completed, result.Failed, result.Unfinished));
        Assert.True(result.SlotsFreed > 0);

        // Every request whose result was lost ran again, some more than once (a retry's result may be lost too).
        Assert.True(result.Affected > 0);
        Assert.InRange(result.Retries, result.Affected, 2 * result.Affected);
    }

    [Fact]
    public void A_router_restart_rebuilds_its_queue_from_the_request_grains()
    {
        var result = FailoverSimulator.Run(Work, new FailureScenario("restart", null, Middle, 0, 0, DetectionMs: 10_000), seed: 3);

        Assert.Equal((2_000, 0, 0, 0L), (result.Completed, result.Failed, result.Unfinished, result.Retries));
        Assert.True(result.Affected > 0);
        Assert.InRange(result.RecoveryMaxMs, 0, 15_000);
    }
}
