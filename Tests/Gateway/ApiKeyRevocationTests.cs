using System.Globalization;
using System.Net;
using FalHints.Host.Gateway;
using FalHints.Host.Hosting;
using FalHints.Tests.Support;

namespace FalHints.Tests.Gateway;

/// <summary>API keys from configuration and from a watched keys file: added and revoked while the gateway runs.</summary>
public sealed class ApiKeyRevocationTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);
    private readonly TinyModelStore _models = new();
    private readonly TempDirectory _secrets = new();

    [Fact]
    public void A_keys_file_holds_one_key_per_line_with_comments_and_blank_lines_ignored()
    {
        Assert.Equal<string>(["alpha", "beta"], ApiKeyStore.Parse("# operators' keys\r\nalpha\n\n  beta  \n#gamma\n"));
    }

    [Fact]
    public async Task Keys_removed_from_the_keys_file_are_refused_without_a_restart_and_a_missing_file_admits_nobody()
    {
        // Laid out like a mounted secret: the keys file is a symbolic link, swapped for one to a new file on update.
        var keysFile = Path.Combine(_secrets.Path, "keys");
        SwapSecret(keysFile, "v1", "# keys\nfile-key-a\nfile-key-b\n");
        var url = $"http://127.0.0.1:{HostProcess.FreeTcpPort().ToString(CultureInfo.InvariantCulture)}";
        await using var host = FalHintsWebHost.Build(new Dictionary<string, string?>
        {
            ["FalHints:ModelStore:Root"] = _models.Root,
            ["FalHints:Silo:Name"] = "keys-test",
            ["FalHints:Silo:SiloPort"] = HostProcess.FreeTcpPort().ToString(CultureInfo.InvariantCulture),
            ["FalHints:Silo:GatewayPort"] = HostProcess.FreeTcpPort().ToString(CultureInfo.InvariantCulture),
            ["FalHints:Gateway:Url"] = url,
            ["FalHints:Gateway:ApiKeys:0"] = "config-key",
            ["FalHints:Gateway:ApiKeysFile"] = keysFile,
            ["FalHints:Runners:CpuRunners"] = "1",
            ["FalHints:Storage:Mode"] = "memory",
            ["Logging:LogLevel:Default"] = "Warning",
        }, CancellationToken.None);
        await host.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri(url) };
        async Task<HttpStatusCode> ModelsWith(string? key)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/models");
            if (key is not null)
            {
                request.Headers.TryAddWithoutValidation("Authorization", $"Key {key}");
            }

            using var response = await http.SendAsync(request);
            return response.StatusCode;
        }

        Assert.Equal(HttpStatusCode.OK, await ModelsWith("file-key-a"));
        Assert.Equal(HttpStatusCode.OK, await ModelsWith("config-key"));
        Assert.Equal(HttpStatusCode.Unauthorized, await ModelsWith(null));
        Assert.Equal(HttpStatusCode.Unauthorized, await ModelsWith("file-key-c"));

        // Revoke a and add c by swapping the secret.
        SwapSecret(keysFile, "v2", "file-key-b\nfile-key-c\n");
        await Eventually.ValueAsync(() => ModelsWith("file-key-a"), s => s == HttpStatusCode.Unauthorized, Patience, "file-key-a revoked");
        Assert.Equal(HttpStatusCode.OK, await ModelsWith("file-key-c"));
        Assert.Equal(HttpStatusCode.OK, await ModelsWith("file-key-b"));

        // A keys file that disappears admits none of its keys (fail closed); configured keys still work.
        File.Delete(keysFile);
        await Eventually.ValueAsync(() => ModelsWith("file-key-b"), s => s == HttpStatusCode.Unauthorized, Patience, "the file's keys refused once it is gone");
        Assert.Equal(HttpStatusCode.OK, await ModelsWith("config-key"));
        Assert.Equal(HttpStatusCode.Unauthorized, await ModelsWith(null));

        await host.StopAsync();
    }

    public void Dispose()
    {
        _models.Dispose();
        _secrets.Dispose();
    }

    /// <summary>Writes <paramref name="text"/> into a new version folder and points the link at it, atomically.</summary>
    private static void SwapSecret(string link, string version, string text)
    {
        var folder = Path.Combine(Path.GetDirectoryName(link)!, version);
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "keys.txt"), text);
        var staging = link + ".new";
        File.CreateSymbolicLink(staging, Path.Combine(version, "keys.txt"));
        File.Move(staging, link, overwrite: true);
    }
}
