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
        var app = AppOption();
        var connection = new ClusterConnection.Options();
        var command = new Command("status", "Print a request's status: queued (with position), in progress, or completed.") { id, logs, app };
        connection.AddTo(command);
        command.SetAction(async (parse, cancellationToken) =>
        {
            using var gateway = HttpGateway.From(parse, connection);
            if (gateway is not null)
            {
                var described = await gateway.StatusAsync(parse.GetValue(app)!, parse.GetValue(id)!, parse.GetValue(logs), cancellationToken);
                Console.WriteLine(Describe(parse.GetValue(id)!, parse.GetValue(app)!, described));
                if (parse.GetValue(logs) && described.TryGetProperty("logs", out var lines) && lines.ValueKind == System.Text.Json.JsonValueKind.Array)
                {
                    foreach (var line in lines.EnumerateArray())
                    {
                        Console.WriteLine($"  {line.GetProperty("timestamp").GetDateTimeOffset():HH:mm:ss.fff} {line.GetProperty("message").GetString()}");
                    }
                }

                return 0;
            }

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
        var app = AppOption();
        var connection = new ClusterConnection.Options();
        var command = new Command("cancel", "Cancel a request: a queued one leaves the queue, a running one is signalled.") { id, app };
        connection.AddTo(command);
        command.SetAction(async (parse, cancellationToken) =>
        {
            using var gateway = HttpGateway.From(parse, connection);
            if (gateway is not null)
            {
                var answer = await gateway.CancelAsync(parse.GetValue(app)!, parse.GetValue(id)!, cancellationToken);
                Console.WriteLine($"{parse.GetValue(id)}: {(answer == "ALREADY_COMPLETED" ? "already completed" : "cancellation requested")}");
                return 0;
            }

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

    private static Option<string> AppOption() => new("--app")
    {
        Description = "The request's app, for --url (the HTTP gateway's routes name it).",
        DefaultValueFactory = _ => FalHints.Client.Apps.AnyModel.AppId,
    };

    /// <summary>A status of the HTTP gateway in the words the Orleans path prints.</summary>
    private static string Describe(string requestId, string appId, System.Text.Json.JsonElement status)
    {
        string? Text(string name) => status.TryGetProperty(name, out var value) && value.ValueKind == System.Text.Json.JsonValueKind.String ? value.GetString() : null;
        return Text("status") switch
        {
            "IN_QUEUE" => $"{requestId} ({appId}): queued, position {status.GetProperty("queue_position").GetInt32()}",
            "IN_PROGRESS" => $"{requestId} ({appId}): in progress on runner {Text("runner_id")} (attempt {status.GetProperty("attempts").GetInt32()})",
            _ when status.TryGetProperty("error", out var error) && error.ValueKind == System.Text.Json.JsonValueKind.Object =>
                $"{requestId} ({appId}): failed ({error.GetProperty("code").GetString()}): {error.GetProperty("message").GetString()}",
            _ => $"{requestId} ({appId}): completed on runner {Text("runner_id")}, hint {(status.TryGetProperty("hint_hit", out var hit) && hit.ValueKind == System.Text.Json.JsonValueKind.True ? "hit" : "missed")}",
        };
    }
}
