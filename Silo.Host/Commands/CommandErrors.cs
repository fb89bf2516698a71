using System.CommandLine;
using System.Net.Sockets;
using FalHints.Host.Hosting;
using Microsoft.Extensions.Options;

namespace FalHints.Host.Commands;

/// <summary>Failures of the command line in one line each: what went wrong and what to change (stack traces with --verbose).</summary>
internal static class CommandErrors
{
    /// <summary>The line for a failure.</summary>
    public static string Line(Exception failure)
    {
        var known = Find<OptionsValidationException>(failure) is { } invalid
            ? string.Join(" ", invalid.Failures.Distinct(StringComparer.Ordinal))
            : Find<StartupException>(failure)?.Message
                ?? Find<CommandLineException>(failure)?.Message
                ?? (Find<SocketException>(failure) is { SocketErrorCode: SocketError.AddressAlreadyInUse } inUse
                    ? $"a port this node needs is already in use ({inUse.Message}); is another FalHints node running?"
                    : null);
        var cause = failure.GetBaseException();
        return known is not null
            ? $"error: {Flatten(known)}"
            : $"error: {Flatten(cause.Message)} ({cause.GetType().Name}; --verbose prints the stack trace)";
    }

    /// <summary>The line for arguments that do not parse.</summary>
    public static string ParseLine(ParseResult parse) =>
        $"error: {Flatten(string.Join(" ", parse.Errors.Select(e => e.Message)))} ('falhints {string.Join(' ', CommandPath(parse.CommandResult))} --help' lists the options)";

    private static List<string> CommandPath(System.CommandLine.Parsing.CommandResult command)
    {
        var names = new List<string>();
        for (var at = command; at?.Parent is System.CommandLine.Parsing.CommandResult parent; at = parent)
        {
            names.Insert(0, at.Command.Name);
        }

        return names;
    }

    private static T? Find<T>(Exception failure)
        where T : Exception
    {
        for (Exception? at = failure; at is not null; at = at.InnerException)
        {
            if (at is T found)
            {
                return found;
            }

            if (at is AggregateException { InnerExceptions.Count: > 0 } aggregate && aggregate.InnerExceptions.Select(Find<T>).FirstOrDefault(f => f is not null) is { } inner)
            {
                return inner;
            }
        }

        return null;
    }

    private static string Flatten(string text) => string.Join(' ', text.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
}
