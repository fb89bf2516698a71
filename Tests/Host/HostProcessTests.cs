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
}
