using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using FalHints.Client.Apps;
using FalHints.Client.Requests;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using FalHints.Host.Hosting;
using Microsoft.Extensions.Configuration;

namespace FalHints.Host.Commands;

/// <summary><c>falhints submit</c>: send one any-model request through the cluster and save the image.</summary>
internal static class SubmitCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Model id of the local store, e.g. demo/ember.", Required = true };
        var prompt = new Option<string>("--prompt") { Description = "The text prompt.", Required = true };
        var hint = new Option<string?>("--hint") { Description = "Routing hint (default: the model id)." };
        var noHint = new Option<bool>("--no-hint") { Description = "Send the request without a hint." };
        var output = new Option<FileInfo>("--out") { Description = "Where to write the PNG.", DefaultValueFactory = _ => new FileInfo("image.png") };
        var app = new Option<string>("--app") { Description = "The app id.", DefaultValueFactory = _ => AnyModel.AppId };
        var gatewayPort = CommonOptions.GatewayPort();
        var cluster = CommonOptions.Cluster();
        var redis = CommonOptions.Redis();
        var connectTimeout = new Option<double>("--connect-timeout") { Description = "Seconds to keep trying to reach the gateway.", DefaultValueFactory = _ => 15 };
        var command = new Command("submit", "Submit one request to a running cluster and save the image it returns.")
        {
            model, prompt, hint, noHint, output, app, gatewayPort, cluster, redis, connectTimeout,
        };
        command.SetAction((parse, cancellationToken) =>
        {
            var modelId = parse.GetValue(model)!;
            var routingHint = parse.GetValue(noHint) ? null : parse.GetValue(hint) ?? modelId;
            var configuration = new ConfigurationBuilder();
            HostConfiguration.Apply(configuration, CommonOptions.Overrides(parse, gatewayPort, cluster, redis));
            return RunAsync(parse.GetValue(app)!, new AnyModelInput(modelId, parse.GetValue(prompt)!), routingHint,
                parse.GetValue(output)!, configuration.Build(), TimeSpan.FromSeconds(parse.GetValue(connectTimeout)), cancellationToken);
        });
        return command;
    }

    private static async Task<int> RunAsync(string appId, AnyModelInput input, string? hint, FileInfo output, IConfiguration configuration, TimeSpan connectTimeout, CancellationToken cancellationToken)
    {
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder();
        // The command reports failures itself; Orleans' connection retries would only add noise.
        builder.Logging.ClearProviders();
        builder.UseOrleansClient(client => client.UseFalHintsClustering(configuration, connectTimeout));
        using var host = builder.Build();
        try
        {
            await host.StartAsync(cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            var where = ClusterSettings.From(configuration).UsesRedis
                ? $"through Redis at {configuration["FalHints:Cluster:RedisConnection"]}"
                : $"on localhost gateway port {configuration.GetValue("FalHints:Silo:GatewayPort", 30000)}";
            await Console.Error.WriteLineAsync($"error: cannot reach a FalHints silo {where} (is 'serve' running?): {ex.GetBaseException().Message}");
            return 2;
        }

        var client = new FalHintsClient(host.Services.GetRequiredService<IClusterClient>());
        var stopwatch = Stopwatch.StartNew();
        var result = await client.SubmitAsync(appId, JsonSerializer.Serialize(input, FalJson.Options), hint, cancellationToken);
        stopwatch.Stop();
        await host.StopAsync(CancellationToken.None);
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
