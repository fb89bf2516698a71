using System.CommandLine;
using FalHints.Client.Contracts;

namespace FalHints.Host.Commands;

/// <summary><c>falhints status ID</c> and <c>falhints cancel ID</c>.</summary>
internal static class RequestCommands
{
    public static Command Status()
    {
        var id = new Argument<string>("request-id") { Description = "The request's id, as submit printed it." };
        var logs = new Option<bool>("--logs") { Description = "Also print the request's log." };
        var connection = new ClusterConnection.Options();
        var command = new Command("status", "Print a request's status: queued (with position), in progress, or completed.") { id, logs };
        connection.AddTo(command);
        command.SetAction(async (parse, cancellationToken) =>
        {
            await using var cluster = await ClusterConnection.OpenAsync(parse, connection, cancellationToken);
            if (cluster is null)
            {
                return 2;
            }

            var status = await cluster.Client.GetRequest(parse.GetValue(id)!).GetStatusAsync(cancellationToken);
            if (status.Result?.Error is { Code: ErrorCodes.RequestNotFound } missing)
            {
                await Console.Error.WriteLineAsync($"error: {missing.Message}");
                return 1;
            }

            Console.WriteLine(status.State switch
            {
                RequestState.Queued => $"{status.RequestId} ({status.AppId}): queued, position {status.QueuePosition}",
                RequestState.InProgress => $"{status.RequestId} ({status.AppId}): in progress on runner {status.RunnerId} (attempt {status.Attempts})",
                _ when status.Result?.Error is { } error => $"{status.RequestId} ({status.AppId}): failed ({error.Code}): {error.Message}",
                _ => $"{status.RequestId} ({status.AppId}): completed on runner {status.RunnerId}, hint {(status.HintHit ? "hit" : "missed")}",
            });
            if (parse.GetValue(logs))
            {
                foreach (var line in status.Logs)
                {
                    Console.WriteLine($"  {line.Timestamp:HH:mm:ss.fff} {line.Message}");
                }
            }

            return 0;
        });
        return command;
    }

    public static Command Cancel()
    {
        var id = new Argument<string>("request-id") { Description = "The request's id, as submit printed it." };
        var connection = new ClusterConnection.Options();
        var command = new Command("cancel", "Cancel a request: a queued one leaves the queue, a running one is signalled.") { id };
        connection.AddTo(command);
        command.SetAction(async (parse, cancellationToken) =>
        {
            await using var cluster = await ClusterConnection.OpenAsync(parse, connection, cancellationToken);
            if (cluster is null)
            {
                return 2;
            }

            var status = await cluster.Client.GetRequest(parse.GetValue(id)!).CancelAsync(cancellationToken);
            if (status.Result?.Error is { Code: ErrorCodes.RequestNotFound } missing)
            {
                await Console.Error.WriteLineAsync($"error: {missing.Message}");
                return 1;
            }

            Console.WriteLine(status.State == RequestState.Completed
                ? $"{status.RequestId}: {(status.Result?.Error?.Code == ErrorCodes.Cancelled ? "cancelled" : "already completed")}"
                : $"{status.RequestId}: cancellation requested");
            return 0;
        });
        return command;
    }
}
