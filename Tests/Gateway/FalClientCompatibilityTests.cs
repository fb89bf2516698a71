using System.Diagnostics;
using System.Text.Json;
using FalHints.Tests.Runners;
using FalHints.Tests.Support;

namespace FalHints.Tests.Gateway;

/// <summary>fal's public JavaScript client, @fal-ai/client 1.10.1 from npm, drives the gateway unchanged.</summary>
public sealed class FalClientCompatibilityTests(GatewayHost gateway) : IClassFixture<GatewayHost>
{
    [Fact]
    public async Task Fal_javascript_client_submits_subscribes_reads_status_and_result_and_cancels()
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
        foreach (var argument in new[] { "fal-client-check.mjs", gateway.Url, GatewayHost.ApiKey, "tiny/alpha", GatedLoadApp.Id, gatedKey, $"js-hold-{Guid.NewGuid():N}" })
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
    }
}
