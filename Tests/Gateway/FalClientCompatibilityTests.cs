using FalHints.Tests.Runners;

namespace FalHints.Tests.Gateway;

/// <summary>fal's public JavaScript client, @fal-ai/client 1.10.1 from npm, drives the gateway with only fal's proxy setting.</summary>
public sealed class FalClientCompatibilityTests(GatewayHost gateway) : IClassFixture<GatewayHost>
{
    [Fact]
    public async Task Every_call_of_fals_javascript_client_works_against_the_gateway()
    {
        var gatedKey = $"js-{Guid.NewGuid():N}";
        GatedLoadApp.Gate(gatedKey).SetResult();

        using var summary = await FalClientScript.RunAsync("fal-client-check.mjs", gateway.Url, GatewayHost.ApiKey, "tiny/alpha", GatedLoadApp.Id, gatedKey, $"js-hold-{Guid.NewGuid():N}", FileEchoApp.Id);
        Assert.False(summary.RootElement.GetProperty("first").GetProperty("hintHit").GetBoolean());
        Assert.True(summary.RootElement.GetProperty("repeat").GetProperty("hintHit").GetBoolean());
        Assert.Equal(400, summary.RootElement.GetProperty("cancel").GetProperty("status").GetInt32());
        Assert.Equal([1, 2, 3, 4], summary.RootElement.GetProperty("stream").GetProperty("steps").EnumerateArray().Select(s => s.GetInt32()));
        Assert.Equal(2, summary.RootElement.GetProperty("webhook").GetProperty("deliveries").GetInt32());

        // Unknown apps are refused at once, not after the router's discovery timeout.
        Assert.InRange(summary.RootElement.GetProperty("unknownAppMs").GetInt32(), 0, 5000);
    }
}
