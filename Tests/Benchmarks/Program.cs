using System.CommandLine;
using FalHints.Benchmarks;

var root = new RootCommand("FalHints benchmarks. Print figures; record them in BENCHMARKS.md with the machine and the command.");

var decisions = new Option<int>("--decisions") { Description = "Decisions to time per configuration.", DefaultValueFactory = _ => 200_000 };
var seed = new Option<int>("--seed") { DefaultValueFactory = _ => 1 };
var placement = new Command("placement", "Cost of one placement decision: 1,000 runners and 10,000 hints, then how it grows with runners and hints.")
{
    decisions, seed,
};
placement.SetAction(parse =>
{
    var count = parse.GetValue(decisions);
    var warmup = PlacementCost.Run(100, 1_000, 20_000, parse.GetValue(seed));
    Console.Error.WriteLine($"warm-up done ({warmup.DecisionsPerSecond:N0} decisions/s)");
    Console.WriteLine(PlacementCost.Header);
    foreach (var (runners, hints) in new[] { (1_000, 10_000), (100, 10_000), (10_000, 10_000), (1_000, 1_000), (1_000, 100_000) })
    {
        Console.Error.WriteLine($"running {runners:N0} runners x {hints:N0} hints ...");
        Console.WriteLine(PlacementCost.Format(PlacementCost.Run(runners, hints, count, parse.GetValue(seed))));
    }

    return 0;
});
root.Add(placement);
var simulate = FalHints.Benchmarks.Simulation.SimulateCommand.Create();
simulate.Add(FalHints.Benchmarks.Simulation.FailoverCommand.Create());
root.Add(simulate);

var overheadCount = new Option<int>("--requests") { DefaultValueFactory = _ => 5_000 };
var overheadConcurrency = new Option<int>("--concurrency") { DefaultValueFactory = _ => 16 };
var overheadStorage = new Option<string>("--storage")
{
    Description = "Where request state is kept: memory (the router alone, the default here), sqlite (the embedded default's store, in a temporary folder) or redis (with --redis).",
    DefaultValueFactory = _ => "memory",
};
var overheadRounds = new Option<int>("--rounds")
{
    Description = "Rounds, each measuring the direct path and then the routed one; the figures are the medians.",
    DefaultValueFactory = _ => 3,
};
var overheadRedis = new Option<string?>("--redis")
{
    Description = "A Redis server (host:port) to run the node as a one-node Redis cluster on; needed by --storage redis.",
};
var overhead = new Command("overhead", "What the router adds over a direct runner call: a no-op app on an in-process node.") { overheadCount, overheadConcurrency, overheadStorage, overheadRounds, overheadRedis };
overhead.SetAction(async parse =>
{
    await RouterOverhead.RunAsync(parse.GetValue(overheadCount), parse.GetValue(overheadConcurrency), parse.GetValue(overheadStorage)!, parse.GetValue(overheadRounds), parse.GetValue(overheadRedis));
    return 0;
});
root.Add(overhead);
root.Add(EndToEnd.Create());
root.Add(GatewayLoad.Create());
return await root.Parse(args).InvokeAsync();
