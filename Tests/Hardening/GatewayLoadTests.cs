using FalHints.Benchmarks;
using FalHints.Client.Apps;

namespace FalHints.Tests.Hardening;

/// <summary>
/// Mixed requests to three apps through the HTTP gateway on loopback, with and without hints (some stale), each followed
/// through its status stream to its result: every accepted request is answered and no answer is a server error.
/// The full 10,000-request run is <c>falhints-bench gateway-load</c> (BENCHMARKS.md); this is the same run, smaller.
/// </summary>
public sealed class GatewayLoadTests
{
    [Fact]
    public async Task A_mixed_load_through_the_gateway_loses_nothing_and_gets_no_server_error()
    {
        var result = await GatewayLoad.RunAsync(count: 600, concurrency: 16, bound: TimeSpan.FromMinutes(3), seed: 7, progress: null, CancellationToken.None);

        Assert.True(result.Problems.Count == 0, string.Join("\n", result.Problems.Take(10)));
        Assert.Equal(600, result.Accepted);
        Assert.Equal(600, result.Completed);
        Assert.Equal(0, result.Lost);
        Assert.Equal(0, result.ServerErrors);
        Assert.Equal(0, result.ClientErrors);
        Assert.Equal(600, result.CompletedPerApp.Values.Sum());
        Assert.All(new[] { AnyModel.AppId, KeyedCacheApp.Id, "bench/no-op" }, app => Assert.True(result.CompletedPerApp.GetValueOrDefault(app) > 100, $"{app} got too few requests"));
    }
}
