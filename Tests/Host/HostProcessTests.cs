using System.Globalization;
using FalHints.Tests.Support;

namespace FalHints.Tests.Host;

/// <summary>The README's flow with real processes: serve a silo, submit hinted requests from a second process.</summary>
public sealed class HostProcessTests : IClassFixture<TinyModelStore>
{
    private static readonly TimeSpan Startup = TimeSpan.FromSeconds(90);
    private readonly TinyModelStore _models;

    public HostProcessTests(TinyModelStore models) => _models = models;

    [Fact]
    public async Task Serve_then_submit_writes_a_png_and_the_repeat_hits_the_hint()
    {
        using var output = new TempDirectory();
        var gatewayPort = HostProcess.FreeTcpPort().ToString(CultureInfo.InvariantCulture);
        using var serve = HostProcess.Start("serve", "--models", _models.Root, "--runners", "2", "--silo-name", "proc-test",
            "--silo-port", HostProcess.FreeTcpPort().ToString(CultureInfo.InvariantCulture), "--gateway-port", gatewayPort,
            "--http-port", HostProcess.FreeTcpPort().ToString(CultureInfo.InvariantCulture));
        await serve.WaitForOutputAsync("FalHints is serving", Startup);

        var firstPath = Path.Combine(output.Path, "first.png");
        var first = await HostProcess.RunAsync(Startup, "submit", "--model", "tiny/alpha", "--prompt", "a red fox", "--out", firstPath, "--gateway-port", gatewayPort);
        var second = await HostProcess.RunAsync(Startup, "submit", "--model", "tiny/alpha", "--prompt", "a red fox", "--out", Path.Combine(output.Path, "second.png"), "--gateway-port", gatewayPort);

        Assert.True(first.ExitCode == 0, first.Output);
        Assert.True(second.ExitCode == 0, second.Output);
        Assert.Equal((128, 128), Png.AssertValid(File.ReadAllBytes(firstPath)));
        Assert.Contains("hint 'tiny/alpha' missed", first.Output, StringComparison.Ordinal);
        Assert.Contains("hint 'tiny/alpha' hit", second.Output, StringComparison.Ordinal);
        Assert.Equal(File.ReadAllBytes(firstPath), File.ReadAllBytes(Path.Combine(output.Path, "second.png")));

        var requestId = System.Text.RegularExpressions.Regex.Match(second.Output, "request ([0-9a-f]{32}): runner").Groups[1].Value;
        var status = await HostProcess.RunAsync(Startup, "status", requestId, "--logs", "--gateway-port", gatewayPort);
        var cancel = await HostProcess.RunAsync(Startup, "cancel", requestId, "--gateway-port", gatewayPort);
        Assert.True(status.ExitCode == 0, status.Output);
        Assert.Contains($"{requestId} (falhints/any-model): completed on runner", status.Output, StringComparison.Ordinal);
        Assert.Contains("accepted with hint 'tiny/alpha'", status.Output, StringComparison.Ordinal);
        Assert.Contains("already completed", cancel.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Submit_names_the_problem_when_the_model_is_unknown()
    {
        var gatewayPort = HostProcess.FreeTcpPort().ToString(CultureInfo.InvariantCulture);
        using var serve = HostProcess.Start("serve", "--models", _models.Root, "--runners", "1", "--silo-name", "proc-test-2",
            "--silo-port", HostProcess.FreeTcpPort().ToString(CultureInfo.InvariantCulture), "--gateway-port", gatewayPort,
            "--http-port", HostProcess.FreeTcpPort().ToString(CultureInfo.InvariantCulture));
        await serve.WaitForOutputAsync("FalHints is serving", Startup);

        var result = await HostProcess.RunAsync(Startup, "submit", "--model", "tiny/unknown", "--prompt", "x", "--out", Path.Combine(Path.GetTempPath(), "never.png"), "--gateway-port", gatewayPort);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("model_not_found", result.Output, StringComparison.Ordinal);
        Assert.Contains("'tiny/unknown'", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Submit_without_a_running_silo_says_so()
    {
        var result = await HostProcess.RunAsync(Startup, "submit", "--model", "tiny/alpha", "--prompt", "x", "--connect-timeout", "2",
            "--gateway-port", HostProcess.FreeTcpPort().ToString(CultureInfo.InvariantCulture));

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("is 'serve' running?", result.Output, StringComparison.Ordinal);
        Assert.Contains("if the cluster uses TLS, set FalHints:Tls here too", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Models_list_shows_the_store()
    {
        var result = await HostProcess.RunAsync(Startup, "models", "list", "--models", _models.Root);

        Assert.Equal(0, result.ExitCode);
        Assert.All(TinyModelStore.ModelIds, id => Assert.Contains(id, result.Output, StringComparison.Ordinal));
    }

    private static string FreePort() => HostProcess.FreeTcpPort().ToString(CultureInfo.InvariantCulture);

    private static string[] ErrorLines(HostProcess process) =>
        [.. process.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];

    [Fact]
    public async Task A_second_node_on_taken_ports_is_refused_in_one_line_and_the_cli_reaches_the_first_over_http()
    {
        var (siloPort, clientPort, httpPort) = (FreePort(), FreePort(), FreePort());
        using var serve = HostProcess.Start("serve", "--models", _models.Root, "--runners", "1", "--silo-name", "proc-ports",
            "--silo-port", siloPort, "--client-port", clientPort, "--http-port", httpPort);
        await serve.WaitForOutputAsync("Submit through the HTTP gateway", Startup);

        // The banner names the ports in use, the pages, and the commands as they must be typed for this node, one per line.
        var banner = serve.Output;
        Assert.Contains($"silo port {siloPort}, Orleans client port {clientPort}, HTTP gateway http://127.0.0.1:{httpPort}", banner, StringComparison.Ordinal);
        Assert.Contains($"dashboard http://127.0.0.1:{httpPort}/dashboard, runners http://127.0.0.1:{httpPort}/runners", banner, StringComparison.Ordinal);
        Assert.Matches($"Submit through the Orleans client port: +dotnet run .* submit --model tiny/\\w+ --prompt \"a red fox\" --out fox.png --client-port {clientPort}\n", banner);
        Assert.Contains($"--url http://127.0.0.1:{httpPort}", banner, StringComparison.Ordinal);

        foreach (var (ports, named) in new[]
        {
            (new[] { siloPort, FreePort(), FreePort() }, $"The silo port {siloPort} is already in use"),
            (new[] { FreePort(), clientPort, FreePort() }, $"The Orleans client port {clientPort} is already in use"),
            (new[] { FreePort(), FreePort(), httpPort }, $"The HTTP port {httpPort} is already in use"),
        })
        {
            var second = await HostProcess.RunAsync(Startup, "serve", "--models", _models.Root, "--runners", "1", "--silo-name", "proc-ports-2",
                "--silo-port", ports[0], "--client-port", ports[1], "--http-port", ports[2]);
            Assert.Equal(1, second.ExitCode);
            Assert.StartsWith($"error: {named}", Assert.Single(ErrorLines(second)), StringComparison.Ordinal);
        }

        var url = $"http://127.0.0.1:{httpPort}";
        using var output = new TempDirectory();
        var image = Path.Combine(output.Path, "http.png");
        var submitted = await HostProcess.RunAsync(Startup, "submit", "--url", url, "--model", "tiny/beta", "--prompt", "over http", "--out", image, "--no-hint");
        Assert.True(submitted.ExitCode == 0, submitted.Output);
        Assert.Equal((128, 128), Png.AssertValid(File.ReadAllBytes(image)));
        var requestId = System.Text.RegularExpressions.Regex.Match(submitted.Output, "request ([0-9a-f]{32}): runner").Groups[1].Value;
        var status = await HostProcess.RunAsync(Startup, "status", requestId, "--url", url, "--logs");
        Assert.Contains($"{requestId} (falhints/any-model): completed on runner proc-ports/cpu:0", status.Output, StringComparison.Ordinal);
        Assert.Contains("accepted without a hint", status.Output, StringComparison.Ordinal);
        Assert.Contains("routed with hint 'tiny/beta' from the app's hint field", status.Output, StringComparison.Ordinal);

        var unknown = await HostProcess.RunAsync(Startup, "submit", "--app", "nobody/nothing", "--model", "tiny/beta", "--prompt", "x", "--client-port", clientPort);
        Assert.Equal(1, unknown.ExitCode);
        Assert.Equal("error: no silo of this cluster serves app 'nobody/nothing'.", Assert.Single(ErrorLines(unknown)));
    }

    [Theory]
    [InlineData("--runners", "-1", "error: FalHints:Runners:CpuRunners must be between 0 and 256, not -1.")]
    [InlineData("--runners", "0", "error: FalHints:Runners:CpuRunners is 0 and TorchSharp sees no CUDA device, so this node would serve nothing")]
    [InlineData("--cluster", "nowhere", "error: FalHints:Cluster:Mode is 'nowhere'; use 'localhost' or 'redis'.")]
    [InlineData("--http-url", "not a url", "error: FalHints:Gateway:Url 'not a url' is not an absolute URL")]
    [InlineData("--advertise", "somewhere", "error: FalHints:Silo:AdvertisedAddress 'somewhere' is not an IP address.")]
    public async Task A_node_that_cannot_start_says_why_in_one_line(string option, string value, string line)
    {
        var result = await HostProcess.RunAsync(Startup, "serve", "--models", _models.Root, option, value,
            "--silo-port", FreePort(), "--client-port", FreePort(), "--http-port", FreePort());

        Assert.Equal(1, result.ExitCode);
        Assert.StartsWith(line, Assert.Single(ErrorLines(result)), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Command_line_mistakes_are_one_line_each_and_verbose_adds_the_stack_trace()
    {
        var emptyHint = await HostProcess.RunAsync(Startup, "submit", "--model", "tiny/alpha", "--prompt", "x", "--hint", "", "--client-port", FreePort());
        var missing = await HostProcess.RunAsync(Startup, "submit", "--prompt", "x");
        var unreachable = await HostProcess.RunAsync(Startup, "status", "0123", "--url", $"http://127.0.0.1:{FreePort()}");
        var verbose = await HostProcess.RunAsync(Startup, "status", "0123", "--url", $"http://127.0.0.1:{FreePort()}", "--verbose");

        Assert.Equal("error: --hint: The hint is empty; send no hint instead.", Assert.Single(ErrorLines(emptyHint)));
        Assert.StartsWith("error: Option '--model' is required.", Assert.Single(ErrorLines(missing)), StringComparison.Ordinal);
        Assert.Matches("^error: cannot reach the HTTP gateway at http://127.0.0.1:\\d+/ .*is 'serve' running there\\?$", Assert.Single(ErrorLines(unreachable)));
        Assert.All([emptyHint, missing, unreachable], r => Assert.Equal(1, r.ExitCode));
        Assert.True(ErrorLines(verbose).Length > 2 && verbose.Output.Contains("   at ", StringComparison.Ordinal), verbose.Output);
    }
}
