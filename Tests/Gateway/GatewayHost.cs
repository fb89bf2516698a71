using System.Globalization;
using FalHints.Client.Contracts;
using FalHints.Host.Hosting;
using FalHints.Runner.Hosting;
using FalHints.Tests.Runners;
using FalHints.Tests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace FalHints.Tests.Gateway;

/// <summary>A whole node (silo, runners, HTTP gateway with an API key) in the test process, with the gated test app.</summary>
public sealed class GatewayHost : IAsyncLifetime, IDisposable
{
    public const string ApiKey = "test-key-1";

    private readonly TinyModelStore _models = new();
    private readonly TempDirectory _data = new();
    private WebApplication? _host;

    public IGrainFactory Grains => _host!.Services.GetRequiredService<IGrainFactory>();

    public string Url { get; } = $"http://127.0.0.1:{HostProcess.FreeTcpPort().ToString(CultureInfo.InvariantCulture)}";

    public HttpClient NewClient(string? key = ApiKey)
    {
        var client = new HttpClient { BaseAddress = new Uri(Url), Timeout = TimeSpan.FromSeconds(60) };
        if (key is not null)
        {
            client.DefaultRequestHeaders.TryAddWithoutValidation("Authorization", $"Key {key}");
        }

        return client;
    }

    public async Task InitializeAsync()
    {
        _host = FalHintsWebHost.Build(new Dictionary<string, string?>
        {
            ["FalHints:ModelStore:Root"] = _models.Root,
            ["FalHints:Silo:Name"] = "gateway-test",
            ["FalHints:Silo:SiloPort"] = HostProcess.FreeTcpPort().ToString(CultureInfo.InvariantCulture),
            ["FalHints:Silo:GatewayPort"] = HostProcess.FreeTcpPort().ToString(CultureInfo.InvariantCulture),
            ["FalHints:Gateway:Url"] = Url,
            ["FalHints:Gateway:ApiKeys:0"] = ApiKey,
            ["FalHints:Gateway:ApiKeys:1"] = "test-key-2",
            ["FalHints:Gateway:MaxBodyBytes"] = "65536",
            ["FalHints:Runners:CpuRunners"] = "2",
            ["FalHints:Storage:Path"] = Path.Combine(_data.Path, "requests.db"),
            ["FalHints:Runners:HeartbeatInterval"] = "00:00:01",
            ["FalHints:Router:DiscoveryTimeout"] = "00:00:02",
            ["FalHints:Gateway:Storage:MaxFileBytes"] = "200000",
            ["FalHints:Gateway:Webhooks:FirstRetryDelay"] = "00:00:00.100",
            ["Logging:LogLevel:Default"] = "Warning",
        }, CancellationToken.None, silo => silo.AddFalApp<GatedLoadApp>().AddFalApp<FileEchoApp>().AddIncomingGrainCallFilter<UnavailableRequestFilter>());
        await _host.StartAsync();
    }

    public async Task DisposeAsync()
    {
        if (_host is not null)
        {
            await _host.StopAsync();
            await _host.DisposeAsync();
        }
    }

    public void Dispose()
    {
        _models.Dispose();
        _data.Dispose();
    }
}

/// <summary>Fails every call to request grains whose id starts with <see cref="Prefix"/>, as a cluster whose directory is changing hands may.</summary>
public sealed class UnavailableRequestFilter : IIncomingGrainCallFilter
{
    // Hex, so ids made with it have a request id's shape and reach the grain.
    public const string Prefix = "deadbeef";

    public Task Invoke(IIncomingGrainCallContext context) =>
        context.Grain is IRequestGrain && context.TargetId.Key.ToString()!.StartsWith(Prefix, StringComparison.Ordinal)
            ? throw new OrleansException($"Test: request {context.TargetId.Key} is unavailable.")
            : context.Invoke();
}
