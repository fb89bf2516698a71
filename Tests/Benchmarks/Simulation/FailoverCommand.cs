using System.CommandLine;
using System.Globalization;

namespace FalHints.Benchmarks.Simulation;

/// <summary>
/// <c>falhints-bench simulate failover</c>: the router's recovery from a runner's death, lost reports and its own
/// restart, in virtual time, beside the same run without failures.
/// </summary>
internal static class FailoverCommand
{
    /// <summary>The scenarios, in the order they are printed.</summary>
    public static IReadOnlyList<string> Scenarios { get; } = ["none", "runner-death", "lost-reports", "router-restart"];

    public static Command Create()
    {
        var scenario = new Option<string>("--scenario") { Description = $"One of {string.Join(", ", Scenarios)}, or 'all'.", DefaultValueFactory = _ => "all" };
        var workload = new Option<string>("--workload") { Description = $"A built-in workload ({string.Join(", ", Workloads.Names)}).", DefaultValueFactory = _ => "zipf" };
        var requests = new Option<int>("--requests") { DefaultValueFactory = _ => 20_000 };
        var runners = new Option<int>("--runners") { Description = "Runners, two per silo (the death kills one silo).", DefaultValueFactory = _ => 8 };
        var utilisation = new Option<double>("--utilisation") { DefaultValueFactory = _ => 0.6 };
        var detection = new Option<double>("--detection-ms") { Description = "How long the membership takes to declare a dead silo dead.", DefaultValueFactory = _ => 10_000 };
        var lost = new Option<double>("--lost-share") { Description = "Share of completion notices lost, and the same share of results lost, in lost-reports.", DefaultValueFactory = _ => 0.001 };
        var seed = new Option<int>("--seed") { DefaultValueFactory = _ => 1 };
        var command = new Command("failover", "Recovery from runner deaths, lost reports and router restarts, in virtual time, through the router's real core.")
        {
            scenario, workload, requests, runners, utilisation, detection, lost, seed,
        };
        command.SetAction(parse =>
        {
            var names = parse.GetValue(scenario) == "all" ? Scenarios : [parse.GetValue(scenario)!];
            if (names.FirstOrDefault(n => !Scenarios.Contains(n)) is { } unknown || !Workloads.Names.Contains(parse.GetValue(workload)!))
            {
                Console.Error.WriteLine($"error: scenarios are {string.Join(", ", Scenarios)} or all; workloads are {string.Join(", ", Workloads.Names)}.");
                return 1;
            }

            if (parse.GetValue(runners) < 4 || parse.GetValue(lost) is < 0 or > 0.5 || parse.GetValue(detection) < 0)
            {
                Console.Error.WriteLine("error: --runners must be at least 4, --lost-share between 0 and 0.5, --detection-ms at least 0.");
                return 1;
            }

            var work = Workloads.BuiltIn(parse.GetValue(workload)!, parse.GetValue(seed), parse.GetValue(requests), parse.GetValue(runners),
                utilisation: parse.GetValue(utilisation));
            var middle = work.Requests[^1].ArrivalMs / 2;
            var (detect, share) = (parse.GetValue(detection), parse.GetValue(lost));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"\n### failover: {work.Name}, {work.Requests.Count:N0} requests, {work.Runners} runners, {parse.GetValue(utilisation):P0} load; failures at {middle / 1000:0} s; membership detection {detect / 1000:0.#} s\n"));
            Console.WriteLine("| scenario | completed | failed | unfinished | retries | slots freed by audit | affected | recovery p50 (s) | recovery max (s) | p50 (ms) | p99 (ms) |");
            Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
            foreach (var name in names)
            {
                var failures = name switch
                {
                    "runner-death" => new FailureScenario(name, middle, null, 0, 0, detect),
                    "lost-reports" => new FailureScenario(name, null, null, share, share, detect),
                    "router-restart" => new FailureScenario(name, null, middle, 0, 0, detect),
                    _ => new FailureScenario(name, null, null, 0, 0, detect),
                };
                var r = FailoverSimulator.Run(work, failures, parse.GetValue(seed));
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {r.Scenario} | {r.Completed:N0} | {r.Failed} | {r.Unfinished} | {r.Retries} | {r.SlotsFreed} | {r.Affected} | {r.RecoveryP50Ms / 1000:0.0} | {r.RecoveryMaxMs / 1000:0.0} | {r.P50Ms:0} | {r.P99Ms:0} |"));
            }

            return 0;
        });
        return command;
    }
}
