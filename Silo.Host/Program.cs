using System.CommandLine;
using FalHints.Host.Commands;

var root = new RootCommand("FalHints: routing hints for inference on an Orleans cluster. Without a command, serves a node.")
{
    ServeCommand.Create(),
    SubmitCommand.Create(),
    RequestCommands.Status(),
    RequestCommands.Cancel(),
    ModelsCommand.Create(),
    SmokeCommand.Create(),
    BenchCommand.Create(),
};
root.Add(CommonOptions.Verbose);

// No command, or only serve's options: serve.
if (args.Length == 0 || (args[0].StartsWith('-') && args[0] is not ("-h" or "--help" or "-?" or "--version")))
{
    args = ["serve", .. args];
}

var parse = root.Parse(args);
if (parse.Errors.Count > 0)
{
    await Console.Error.WriteLineAsync(CommandErrors.ParseLine(parse));
    return 1;
}

try
{
    // serve stops gracefully on SIGTERM through the host (draining its runners first); the parser must not cut that short.
    return await parse.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null, EnableDefaultExceptionHandler = false });
}
catch (Exception ex) when (ex is not OperationCanceledException)
{
    await Console.Error.WriteLineAsync(parse.GetValue(CommonOptions.Verbose) ? $"error: {ex}" : CommandErrors.Line(ex));
    return 1;
}
