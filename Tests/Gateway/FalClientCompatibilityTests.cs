using System.Diagnostics;
using System.Text.Json;
using FalHints.Tests.Runners;
using FalHints.Tests.Support;

namespace FalHints.Tests.Gateway;

/// <summary>fal's public JavaScript client, @fal-ai/client 1.10.1 from npm, drives the gateway with only fal's proxy setting.</summary>
public sealed class FalClientCompatibilityTests(GatewayHost gateway) : IClassFixture<GatewayHost>
{
    [Fact]
    public async Task Every_call_of_fals_javascript_client_works_against_the_gateway()
    {
        var folder = Path.Combine(RepositoryPaths.Root, "Tests", "Gateway", "js");
        Assert.True(Directory.Exists(Path.Combine(folder, "node_modules", "@fal-ai", "client")),
            $"@fal-ai/client is not installed in {folder}; run 'npm ci --prefix Tests/Gateway/js' (bash .ci/run does).");
        var gatedKey = $"js-{Guid.NewGuid():N}";
        GatedLoadApp.Gate(gatedKey).SetResult();

        var start = new ProcessStartInfo("node")
        {
            WorkingDirectory = folder,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var argument in new[] { "fal-client-check.mjs", gateway.Url, GatewayHost.ApiKey, "tiny/alpha", GatedLoadApp.Id, gatedKey, $"js-hold-{Guid.NewGuid():N}", FileEchoApp.Id })
        {
            start.ArgumentList.Add(argument);
        }

        using var node = Process.Start(start)!;
        var output = node.StandardOutput.ReadToEndAsync();
        var errors = node.StandardError.ReadToEndAsync();
        await node.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(2));

        Assert.True(node.ExitCode == 0, $"node exited with {node.ExitCode}:\n{await errors}\n{await output}");
        using var summary = JsonDocument.Parse(await output);
        Assert.False(summary.RootElement.GetProperty("first").GetProperty("hintHit").GetBoolean());
        Assert.True(summary.RootElement.GetProperty("repeat").GetProperty("hintHit").GetBoolean());
        Assert.Equal(400, summary.RootElement.GetProperty("cancel").GetProperty("status").GetInt32());
        Assert.Equal([1, 2, 3, 4], summary.RootElement.GetProperty("stream").GetProperty("steps").EnumerateArray().Select(s => s.GetInt32()));
        Assert.Equal(2, summary.RootElement.GetProperty("webhook").GetProperty("deliveries").GetInt32());

        // Unknown apps are refused at once, not after the router's discovery timeout.
        Assert.InRange(summary.RootElement.GetProperty("unknownAppMs").GetInt32(), 0, 5000);
    }
}
