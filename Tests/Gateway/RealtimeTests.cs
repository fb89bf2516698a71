using System.Net;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using FalHints.Client.Contracts;
using FalHints.Host.Gateway;
using FalHints.Tests.Runners;
using MessagePack;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace FalHints.Tests.Gateway;

/// <summary>fal's realtime API on the gateway: WebSocket connections, their tokens, their limits, and fal's own client.</summary>
public sealed class RealtimeTests(GatewayHost gateway) : IClassFixture<GatewayHost>
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Fals_javascript_client_connects_and_gets_an_output_per_input_in_order()
    {
        using var summary = await FalClientScript.RunAsync("--experimental-websocket", "fal-realtime-check.mjs", gateway.Url, GatewayHost.ApiKey, "tiny/alpha");
        Assert.Equal(2, summary.RootElement.GetProperty("defaultToken").GetProperty("outputs").GetArrayLength());
        Assert.Equal("falhints/any-model/realtime", summary.RootElement.GetProperty("customToken").GetProperty("endpoint").GetString());
        Assert.Equal(1008, summary.RootElement.GetProperty("badToken").GetProperty("status").GetInt32());
    }

    [Fact]
    public async Task A_json_text_input_with_an_api_key_header_gets_a_json_text_output()
    {
        using var socket = await ConnectAsync("falhints/any-model", key: GatewayHost.ApiKey);

        await socket.SendAsync(Encoding.UTF8.GetBytes("""{"model": "tiny/alpha", "prompt": "a red fox"}"""), WebSocketMessageType.Text, true, CancellationToken.None);
        var (type, answer) = await ReceiveAsync(socket);

        Assert.Equal(WebSocketMessageType.Text, type);
        using var output = JsonDocument.Parse(answer);
        Assert.Equal("image/png", output.RootElement.GetProperty("image").GetProperty("content_type").GetString());
        Assert.StartsWith(gateway.Url + "/files/", output.RootElement.GetProperty("image").GetProperty("url").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_message_that_is_not_an_input_is_answered_with_an_error_and_the_connection_goes_on()
    {
        using var socket = await ConnectAsync("falhints/any-model", key: GatewayHost.ApiKey);

        await socket.SendAsync(new byte[] { 0xc1 }, WebSocketMessageType.Binary, true, CancellationToken.None);
        var (_, notMessagePack) = await ReceiveAsync(socket);
        await socket.SendAsync(MessagePackSerializer.ConvertFromJson("[1, 2]"), WebSocketMessageType.Binary, true, CancellationToken.None);
        var (_, notAnObject) = await ReceiveAsync(socket);
        await socket.SendAsync(MessagePackSerializer.ConvertFromJson("""{"model": "tiny/alpha", "prompt": "still here"}"""), WebSocketMessageType.Binary, true, CancellationToken.None);
        var (type, output) = await ReceiveAsync(socket);

        Assert.Equal("x-fal-error", JsonDocument.Parse(notMessagePack).RootElement.GetProperty("type").GetString());
        Assert.Contains("MessagePack", JsonDocument.Parse(notMessagePack).RootElement.GetProperty("reason").GetString(), StringComparison.Ordinal);
        Assert.Contains("must be an object", JsonDocument.Parse(notAnObject).RootElement.GetProperty("reason").GetString(), StringComparison.Ordinal);
        Assert.Equal(WebSocketMessageType.Binary, type);
        Assert.Equal("image/png", JsonDocument.Parse(output).RootElement.GetProperty("image").GetProperty("content_type").GetString());
    }

    [Fact]
    public async Task An_input_that_finds_the_buffer_full_is_refused_by_name_and_the_others_all_answer()
    {
        var key = $"rt-{Guid.NewGuid():N}";
        var hold = $"rt-hold-{Guid.NewGuid():N}";
        GatedLoadApp.Gate(key).SetResult();
        using var socket = await ConnectAsync(GatedLoadApp.Id, key: GatewayHost.ApiKey, query: "?max_buffering=1");

        // The first input runs and holds; the second waits in the one-input buffer; the third finds it full.
        await SendJsonAsync(socket, new { key, hold });
        await WaitUntilAsync(async () => (await RunningOnGatedRunnersAsync()) > 0);
        await SendJsonAsync(socket, new { key });
        await SendJsonAsync(socket, new { key });
        var (_, full) = await ReceiveAsync(socket);
        GatedLoadApp.Gate(hold).SetResult();
        var (_, firstAnswer) = await ReceiveAsync(socket);
        var (_, secondAnswer) = await ReceiveAsync(socket);

        Assert.Equal("BUFFER_FULL", JsonDocument.Parse(full).RootElement.GetProperty("error").GetString());
        Assert.Contains("max_buffering", JsonDocument.Parse(full).RootElement.GetProperty("reason").GetString(), StringComparison.Ordinal);
        Assert.Equal(key, JsonDocument.Parse(firstAnswer).RootElement.GetProperty("key").GetString());
        Assert.Equal(key, JsonDocument.Parse(secondAnswer).RootElement.GetProperty("key").GetString());
    }

    [Theory]
    [InlineData("/run/falhints/any-model/realtime", "", HttpStatusCode.BadRequest, "WebSocket")]
    [InlineData("/run/falhints/any-model/realtime", "?max_buffering=0", HttpStatusCode.BadRequest, "max_buffering")]
    [InlineData("/run/nobody/nothing/realtime", "", HttpStatusCode.NotFound, "app_not_found")]
    [InlineData("/run/falhints/any-model/other", "", HttpStatusCode.NotFound, "/realtime")]
    public async Task A_connection_that_cannot_be_served_is_refused_before_it_opens(string path, string query, HttpStatusCode status, string mentions)
    {
        using var http = gateway.NewClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, path + query);
        if (query.Length > 0 || path.Contains("nobody", StringComparison.Ordinal))
        {
            // A WebSocket upgrade, so the refusal is about the query or the app, not the missing upgrade.
            request.Headers.TryAddWithoutValidation("Connection", "Upgrade");
            request.Headers.TryAddWithoutValidation("Upgrade", "websocket");
            request.Headers.TryAddWithoutValidation("Sec-WebSocket-Version", "13");
            request.Headers.TryAddWithoutValidation("Sec-WebSocket-Key", Convert.ToBase64String(Guid.NewGuid().ToByteArray()));
        }

        using var response = await http.SendAsync(request);

        Assert.Equal(status, response.StatusCode);
        Assert.Contains(mentions, await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Tokens_are_issued_only_to_callers_with_a_key_and_name_the_problem_with_bad_input()
    {
        using var anonymous = gateway.NewClient(key: null);
        using var keyed = gateway.NewClient();

        using var refused = await anonymous.PostAsync("/tokens/", Json(new { allowed_apps = new[] { "any-model" } }));
        using var noApps = await keyed.PostAsync("/tokens/", Json(new { allowed_apps = Array.Empty<string>() }));
        using var tooLong = await keyed.PostAsync("/tokens/", Json(new { allowed_apps = new[] { "any-model" }, token_expiration = 100_000 }));
        using var issued = await keyed.PostAsync("/tokens/", Json(new { allowed_apps = new[] { "any-model" }, token_expiration = 60 }));

        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, noApps.StatusCode);
        Assert.Contains("allowed_apps", await noApps.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, tooLong.StatusCode);
        Assert.Contains("token_expiration", await tooLong.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        var token = JsonSerializer.Deserialize<string>(await issued.Content.ReadAsStringAsync())!;
        using var socket = await ConnectAsync("falhints/any-model", key: null, query: $"?fal_jwt_token={Uri.EscapeDataString(token)}");
        Assert.Equal(WebSocketState.Open, socket.State);
    }

    [Fact]
    public async Task A_connection_without_a_key_or_token_is_told_unauthorized_and_learns_nothing_about_the_app()
    {
        foreach (var appId in new[] { "falhints/any-model", "nobody/nothing" })
        {
            using var socket = await ConnectAsync(appId, key: null);
            var (_, answer) = await ReceiveAsync(socket);
            using var timeout = new CancellationTokenSource(Patience);
            var closing = await socket.ReceiveAsync(new byte[1024], timeout.Token);

            Assert.Equal("Unauthorized", JsonDocument.Parse(answer).RootElement.GetProperty("error").GetString());
            Assert.Equal(WebSocketMessageType.Close, closing.MessageType);
            Assert.Equal(WebSocketCloseStatus.PolicyViolation, socket.CloseStatus);
        }
    }

    [Fact]
    public void A_token_admits_only_its_apps_until_it_expires_and_only_while_its_key_is_accepted()
    {
        var now = DateTimeOffset.UnixEpoch.AddDays(20_000);
        var keys = Keys("key-a", "key-b");
        var token = RealtimeTokens.Issue("key-a", ["any-model"], now.AddSeconds(60));

        Assert.Null(RealtimeTokens.Check(token, "any-model", keys, now));
        Assert.Contains("does not allow the app 'other'", RealtimeTokens.Check(token, "other", keys, now), StringComparison.Ordinal);
        Assert.Contains("expired", RealtimeTokens.Check(token, "any-model", keys, now.AddSeconds(60)), StringComparison.Ordinal);
        Assert.Contains("revoked", RealtimeTokens.Check(token, "any-model", Keys("key-b"), now), StringComparison.Ordinal);
        var parts = token.Split('.');
        var widened = string.Join('.', parts[0], parts[1], Convert.ToBase64String(JsonSerializer.SerializeToUtf8Bytes(new[] { "any-model", "other" })).TrimEnd('='), parts[3], parts[4]);
        Assert.Contains("signature", RealtimeTokens.Check(widened, "other", keys, now), StringComparison.Ordinal);
        Assert.Contains("not one this gateway issued", RealtimeTokens.Check("abc", "any-model", keys, now), StringComparison.Ordinal);
        Assert.Contains("fal_jwt_token", RealtimeTokens.Check(null, "any-model", keys, now), StringComparison.Ordinal);
    }

    private static ApiKeyStore Keys(params string[] keys)
    {
        var options = new GatewayOptions();
        foreach (var key in keys)
        {
            options.ApiKeys.Add(key);
        }

        return new ApiKeyStore(new FixedOptions(options), TimeProvider.System, NullLogger<ApiKeyStore>.Instance);
    }

    private static StringContent Json(object value) => new(JsonSerializer.Serialize(value), Encoding.UTF8, "application/json");

    private async Task<ClientWebSocket> ConnectAsync(string appId, string? key, string query = "")
    {
        var socket = new ClientWebSocket();
        if (key is not null)
        {
            socket.Options.SetRequestHeader("Authorization", $"Key {key}");
        }

        await socket.ConnectAsync(new Uri($"{gateway.Url.Replace("http://", "ws://", StringComparison.Ordinal)}/run/{appId}/realtime{query}"), CancellationToken.None);
        return socket;
    }

    private static Task SendJsonAsync(ClientWebSocket socket, object input) =>
        socket.SendAsync(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(input)), WebSocketMessageType.Text, true, CancellationToken.None);

    private static async Task<(WebSocketMessageType Type, string Json)> ReceiveAsync(ClientWebSocket socket)
    {
        using var timeout = new CancellationTokenSource(Patience);
        using var message = new MemoryStream();
        var buffer = new byte[64 * 1024];
        WebSocketReceiveResult received;
        do
        {
            received = await socket.ReceiveAsync(buffer, timeout.Token);
            message.Write(buffer, 0, received.Count);
        }
        while (!received.EndOfMessage);

        Assert.NotEqual(WebSocketMessageType.Close, received.MessageType);
        return received.MessageType == WebSocketMessageType.Binary
            ? (received.MessageType, MessagePackSerializer.ConvertToJson(message.ToArray()))
            : (received.MessageType, Encoding.UTF8.GetString(message.ToArray()));
    }

    private async Task<int> RunningOnGatedRunnersAsync() =>
        (await gateway.Grains.GetGrain<IRouterGrain>(GatedLoadApp.Id).GetSnapshotAsync()).InFlight;

    private static async Task WaitUntilAsync(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "the held input did not start within 30 s");
            await Task.Delay(50);
        }
    }

    private sealed class FixedOptions(GatewayOptions value) : IOptionsMonitor<GatewayOptions>
    {
        public GatewayOptions CurrentValue => value;

        public GatewayOptions Get(string? name) => value;

        public IDisposable? OnChange(Action<GatewayOptions, string?> listener) => null;
    }
}
