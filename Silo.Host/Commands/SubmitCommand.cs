using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using FalHints.Client.Apps;
using FalHints.Client.Contracts;
using FalHints.Client.Requests;

namespace FalHints.Host.Commands;

/// <summary><c>falhints submit</c>: send one any-model request through the cluster, show its queue position live, save the image.</summary>
internal static class SubmitCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Model id of the local store, e.g. demo/ember.", Required = true };
        var prompt = new Option<string>("--prompt") { Description = "The text prompt.", Required = true };
        var hint = new Option<string?>("--hint") { Description = "Routing hint (default: the model id)." };
        var noHint = new Option<bool>("--no-hint") { Description = "Send the request without a hint." };
        var priority = new Option<string>("--priority") { Description = "Queue priority: normal or low.", DefaultValueFactory = _ => "normal" };
        var startTimeout = new Option<double?>("--start-timeout") { Description = "Fail if the request has not started within this many seconds." };
        var output = new Option<FileInfo>("--out") { Description = "Where to write the PNG.", DefaultValueFactory = _ => new FileInfo("image.png") };
        var app = new Option<string>("--app") { Description = "The app id.", DefaultValueFactory = _ => AnyModel.AppId };
        var connection = new ClusterConnection.Options();
        var command = new Command("submit", "Submit one request to a running cluster (Orleans client port, or the HTTP gateway with --url), show its queue position, and save the image it returns.")
        {
            model, prompt, hint, noHint, priority, startTimeout, output, app,
        };
        connection.AddTo(command);
        command.SetAction(async (parse, cancellationToken) =>
        {
            if (parse.GetValue(priority) is not ("normal" or "low"))
            {
                await Console.Error.WriteLineAsync($"error: --priority is '{parse.GetValue(priority)}'; use normal or low.");
                return 1;
            }

            if (parse.GetValue(startTimeout) is <= 0)
            {
                await Console.Error.WriteLineAsync("error: --start-timeout must be a positive number of seconds.");
                return 1;
            }

            var modelId = parse.GetValue(model)!;
            var requestHint = parse.GetValue(noHint) ? null : parse.GetValue(hint) ?? modelId;
            if (!Hints.TryValidate(requestHint, out var hintError))
            {
                await Console.Error.WriteLineAsync($"error: --hint: {hintError}");
                return 1;
            }

            var options = new SubmitOptions(
                parse.GetValue(priority) == "low" ? RequestPriority.Low : RequestPriority.Normal,
                parse.GetValue(startTimeout) is { } seconds ? TimeSpan.FromSeconds(seconds) : null);
            var input = new AnyModelInput(modelId, parse.GetValue(prompt)!);
            using var gateway = HttpGateway.From(parse, connection);
            if (gateway is not null)
            {
                return await RunAsync(gateway, parse.GetValue(app)!, input, requestHint, options, parse.GetValue(output)!, cancellationToken);
            }

            await using var cluster = await ClusterConnection.OpenAsync(parse, connection, cancellationToken);
            return cluster is null
                ? 2
                : await RunAsync(cluster.Client, parse.GetValue(app)!, input, requestHint, options, parse.GetValue(output)!, cancellationToken);
        });
        return command;
    }

    /// <summary>The same request through the HTTP gateway.</summary>
    private static async Task<int> RunAsync(HttpGateway gateway, string appId, AnyModelInput input, string? hint, SubmitOptions options, FileInfo output, CancellationToken cancellationToken)
    {
        var stopwatch = Stopwatch.StartNew();
        var requestId = await gateway.SubmitAsync(appId, JsonSerializer.Serialize(input, FalJson.Options), hint, options, cancellationToken);
        JsonElement last = default;
        string? shown = null;
        await foreach (var status in gateway.StreamStatusAsync(appId, requestId, cancellationToken))
        {
            last = status;
            var line = status.GetProperty("status").GetString() switch
            {
                "IN_QUEUE" => $"queued, position {status.GetProperty("queue_position").GetInt32().ToString(CultureInfo.InvariantCulture)}",
                "IN_PROGRESS" => $"in progress on runner {status.GetProperty("runner_id").GetString()}",
                _ => null,
            };
            if (line is not null && line != shown)
            {
                Console.WriteLine($"request {requestId}: {line}");
                shown = line;
            }
        }

        if (last.TryGetProperty("error", out var error) && error.ValueKind == JsonValueKind.Object)
        {
            await Console.Error.WriteLineAsync($"error: request {requestId} failed ({error.GetProperty("code").GetString()}): {error.GetProperty("message").GetString()}");
            return 1;
        }

        var image = (await gateway.ResultAsync(appId, requestId, cancellationToken)).GetProperty("image");
        var bytes = await gateway.DownloadAsync(image.GetProperty("url").GetString()!, cancellationToken);
        await File.WriteAllBytesAsync(output.FullName, bytes, cancellationToken);
        stopwatch.Stop();
        var hit = last.TryGetProperty("hint_hit", out var h) && h.ValueKind == JsonValueKind.True;
        var hintState = hint is null ? "no hint" : hit ? $"hint '{hint}' hit" : $"hint '{hint}' missed";
        Console.WriteLine($"request {requestId}: runner {last.GetProperty("runner_id").GetString()}, {hintState}, {stopwatch.Elapsed.TotalSeconds:0.000} s");
        Console.WriteLine($"wrote {output.FullName} ({image.GetProperty("width").GetInt32()}x{image.GetProperty("height").GetInt32()} {image.GetProperty("content_type").GetString()}, {bytes.Length} bytes)");
        return 0;
    }

    private static async Task<int> RunAsync(FalHintsClient client, string appId, AnyModelInput input, string? hint, SubmitOptions options, FileInfo output, CancellationToken cancellationToken)
    {
        if ((await client.GetHostedAppsAsync(cancellationToken)).Refuses(appId))
        {
            await Console.Error.WriteLineAsync($"error: no silo of this cluster serves app '{appId}'.");
            return 1;
        }

        var stopwatch = Stopwatch.StartNew();
        var handle = await client.EnqueueAsync(appId, JsonSerializer.Serialize(input, FalJson.Options), hint, "/", options, cancellationToken);
        await foreach (var status in handle.StreamStatusAsync(cancellationToken))
        {
            var line = status.State switch
            {
                RequestState.Queued when status.QueuePosition is { } position => $"queued, position {position.ToString(CultureInfo.InvariantCulture)}",
                RequestState.InProgress => $"in progress on runner {status.RunnerId}",
                _ => null,
            };
            if (line is not null)
            {
                Console.WriteLine($"request {handle.RequestId}: {line}");
            }
        }

        var result = await handle.GetResultAsync(cancellationToken);
        stopwatch.Stop();
        if (result.Error is { } error)
        {
            await Console.Error.WriteLineAsync($"error: request {result.RequestId} failed ({error.Code}): {error.Message}");
            return 1;
        }

        var image = JsonSerializer.Deserialize<AnyModelOutput>(result.OutputJson!, FalJson.Options)!.Image;
        await File.WriteAllBytesAsync(output.FullName, image.DecodeDataUrl(), cancellationToken);
        var hintState = hint is null ? "no hint" : result.HintHit ? $"hint '{hint}' hit" : $"hint '{hint}' missed";
        Console.WriteLine($"request {result.RequestId}: runner {result.RunnerId}, {hintState}, {stopwatch.Elapsed.TotalSeconds:0.000} s");
        Console.WriteLine($"wrote {output.FullName} ({image.Width}x{image.Height} {image.ContentType}, {image.FileSize} bytes)");
        return 0;
    }
}
