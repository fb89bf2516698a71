using System.Diagnostics;
using System.Text.Json;
using FalHints.Tests.Support;

namespace FalHints.Tests.Gateway;

/// <summary>Runs a script of <c>Tests/Gateway/js</c> with node (where fal's npm client is installed) and reads the JSON summary it prints.</summary>
internal static class FalClientScript
{
    private static readonly string Folder = Path.Combine(RepositoryPaths.Root, "Tests", "Gateway", "js");

    /// <summary>Runs <c>node</c> with <paramref name="arguments"/>; fails the test with node's output unless it exits with 0.</summary>
    public static async Task<JsonDocument> RunAsync(params string[] arguments)
    {
        Assert.True(Directory.Exists(Path.Combine(Folder, "node_modules", "@fal-ai", "client")),
            $"@fal-ai/client is not installed in {Folder}; run 'npm ci --prefix Tests/Gateway/js' (bash .ci/run does).");
        var start = new ProcessStartInfo("node") { WorkingDirectory = Folder, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var node = Process.Start(start)!;
        var output = node.StandardOutput.ReadToEndAsync();
        var errors = node.StandardError.ReadToEndAsync();
        await node.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(2));

        Assert.True(node.ExitCode == 0, $"node exited with {node.ExitCode}:\n{await errors}\n{await output}");
        return JsonDocument.Parse(await output);
    }
}
