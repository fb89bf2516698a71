using FalHints.Host.Gateway;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace FalHints.Tests.Gateway;

/// <summary>The pure parts of fal's protocol: proxy targets, webhook allow-lists and backoff, request headers.</summary>
public sealed class FalProtocolTests
{
    [Theory]
    [InlineData("https://queue.fal.run/falhints/any-model", "/falhints/any-model", "")]
    [InlineData("https://queue.fal.run/falhints/any-model/requests/abc/status?logs=1", "/falhints/any-model/requests/abc/status", "?logs=1")]
    [InlineData("https://queue.fal.run/falhints/any-model?fal_webhook=http%3A%2F%2F127.0.0.1%2Fhook", "/falhints/any-model", "?fal_webhook=http%3A%2F%2F127.0.0.1%2Fhook")]
    [InlineData("https://fal.run/falhints/any-model", "/run/falhints/any-model", "")]
    [InlineData("https://fal.run/falhints/any-model/stream", "/run/falhints/any-model/stream", "")]
    [InlineData("https://rest.fal.ai/storage/upload/initiate?storage_type=fal-cdn-v3", "/storage/upload/initiate", "?storage_type=fal-cdn-v3")]
    [InlineData("https://rest.fal.ai/tokens/", "/tokens", "")]
    public void Fal_urls_map_to_the_gateways_own_routes(string target, string path, string query)
    {
        Assert.Null(FalProxy.Map(target, out var mapped, out var mappedQuery));

        Assert.Equal(path, mapped.Value);
        Assert.Equal(query, mappedQuery.Value ?? string.Empty);
    }

    [Theory]
    [InlineData(null, StatusCodes.Status400BadRequest, "x-fal-target-url")]
    [InlineData("http://queue.fal.run/a/b", StatusCodes.Status400BadRequest, "not an https URL")]
    [InlineData("https://internal.example/admin", StatusCodes.Status404NotFound, "does not serve https://internal.example/admin")]
    [InlineData("https://rest.fal.ai/billing/usage", StatusCodes.Status404NotFound, "does not serve https://rest.fal.ai/billing/usage")]
    [InlineData("https://rest.fal.ai/storage/upload/initiate-multipart?storage_type=fal-cdn-v3", StatusCodes.Status413PayloadTooLarge, "multipart")]
    public async Task Other_targets_are_refused_with_an_error_that_names_them(string? target, int status, string mentions)
    {
        var error = FalProxy.Map(target, out _, out _);
        var http = new DefaultHttpContext { RequestServices = new ServiceCollection().AddLogging().BuildServiceProvider() };
        http.Response.Body = new MemoryStream();

        await Assert.IsType<IResult>(error, exactMatch: false).ExecuteAsync(http);

        Assert.Equal(status, http.Response.StatusCode);
        http.Response.Body.Position = 0;
        Assert.Contains(mentions, new StreamReader(http.Response.Body).ReadToEnd(), StringComparison.Ordinal);
        Assert.Equal("false", http.Response.Headers[FalErrorResult.RetryableHeader]);
    }

    [Theory]
    [InlineData("http://127.0.0.1:9000/hook", true)]
    [InlineData("http://127.8.9.10/hook", true)]
    [InlineData("http://localhost:9000/hook", true)]
    [InlineData("https://[::1]/hook", true)]
    [InlineData("http://10.0.0.1/hook", false)]
    [InlineData("http://169.254.169.254/latest/meta-data", false)]
    [InlineData("https://hooks.example.com/hook", false)]
    [InlineData("http://user:secret@127.0.0.1/hook", false)]
    [InlineData("ftp://127.0.0.1/hook", false)]
    [InlineData("/relative/hook", false)]
    public void Webhooks_go_only_to_loopback_unless_the_operator_allows_more(string url, bool allowed)
    {
        Assert.Equal(allowed, new WebhookOptions().TryAllow(url, out _, out var error));
        Assert.Equal(allowed, error is null);
    }

    [Theory]
    [InlineData("https://hooks.example.com/x", true)]
    [InlineData("https://a.b.example.com/x", true)]
    [InlineData("https://example.com/x", false)]
    [InlineData("https://example.com.evil.test/x", false)]
    [InlineData("http://10.1.200.3/x", true)]
    [InlineData("http://10.2.0.1/x", false)]
    [InlineData("http://203.0.113.7/x", true)]
    [InlineData("http://127.0.0.1/x", false)]
    [InlineData("http://hooks.internal/x", true)]
    public void An_allow_list_replaces_loopback_with_the_hosts_and_ranges_it_names(string url, bool allowed)
    {
        var options = new WebhookOptions();
        foreach (var entry in new[] { "*.example.com", "10.1.0.0/16", "203.0.113.7", "hooks.internal" })
        {
            Assert.True(WebhookOptions.IsValidEntry(entry), entry);
            options.AllowedHosts.Add(entry);
        }

        Assert.Equal(allowed, options.TryAllow(url, out _, out _));
        Assert.False(WebhookOptions.IsValidEntry("10.0.0.0/99"));
        Assert.False(WebhookOptions.IsValidEntry("not a host"));
    }

    [Fact]
    public void Webhook_retries_back_off_exponentially_up_to_the_limit()
    {
        var options = new WebhookOptions { FirstRetryDelay = TimeSpan.FromSeconds(1), MaxRetryDelay = TimeSpan.FromSeconds(10) };

        Assert.Equal([1, 2, 4, 8, 10, 10], Enumerable.Range(1, 6).Select(a => options.DelayAfter(a).TotalSeconds));
    }

    [Theory]
    [InlineData("1", true)]
    [InlineData("true", true)]
    [InlineData("YES", true)]
    [InlineData("0", false)]
    [InlineData("no", false)]
    public void X_fal_no_retry_turns_retries_off(string value, bool noRetry)
    {
        var http = new DefaultHttpContext();
        http.Request.Headers["x-fal-no-retry"] = value;

        Assert.Null(FalQueueApi.ReadOptions(http.Request, out _, out var options));
        Assert.Equal(noRetry, options.NoRetry);
    }
}
