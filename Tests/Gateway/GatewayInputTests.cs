using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using FalHints.Client.Contracts;
using FalHints.Router.Requests;
using FalHints.Runner.Apps;

namespace FalHints.Tests.Gateway;

/// <summary>Input an attacker or a careless client sends: every case gets a 4xx with fal's JSON error body, and costs the cluster nothing.</summary>
public sealed class GatewayInputTests(GatewayHost gateway) : IClassFixture<GatewayHost>
{
    private const string App = "/falhints/any-model";

    private static async Task<JsonElement> AssertErrorAsync(HttpResponseMessage response, HttpStatusCode status, string code, string mentions)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == status, $"{(int)response.StatusCode}: {text}");
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var body = JsonDocument.Parse(text).RootElement.Clone();
        Assert.Equal(code, body.GetProperty("error_code").GetString());
        Assert.Contains(mentions, body.GetProperty("detail").GetString(), StringComparison.Ordinal);
        return body;
    }

    [Fact]
    public async Task A_body_that_is_not_utf8_gets_a_400_naming_the_byte()
    {
        using var http = gateway.NewClient();
        var bytes = Encoding.UTF8.GetBytes("""{"model":"tiny/alpha","prompt":"__"}""");
        bytes[^3] = 0xFF;
        using var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new("application/json");

        await AssertErrorAsync(await http.PostAsync(App, content), HttpStatusCode.BadRequest, ErrorCodes.InvalidInput, "not valid UTF-8: byte 0xFF at offset");
    }

    [Fact]
    public async Task An_input_over_the_apps_declared_limit_is_refused_at_submission_with_422()
    {
        using var http = gateway.NewClient();
        var prompt = new string('x', AnyModelApp.MaxPromptLength + 1);
        using var content = new StringContent(JsonSerializer.Serialize(new { model = "tiny/alpha", prompt }), Encoding.UTF8, "application/json");

        await AssertErrorAsync(await http.PostAsync(App, content), HttpStatusCode.UnprocessableEntity, ErrorCodes.InvalidInput,
            $"at most {AnyModelApp.MaxPromptLength} are allowed");
    }

    [Fact]
    public async Task Ids_that_cannot_be_request_ids_get_a_404_without_touching_a_grain()
    {
        using var http = gateway.NewClient();
        var before = await RequestActivationsAsync();
        for (var i = 0; i < 50; i++)
        {
            var id = Convert.ToHexString(Guid.NewGuid().ToByteArray()) + new string('z', 200 + i);
            foreach (var path in new[] { $"{App}/requests/{id}/status", $"{App}/requests/{id}", $"{App}/requests/{id}/status/stream" })
            {
                await AssertErrorAsync(await http.GetAsync(path), HttpStatusCode.NotFound, ErrorCodes.RequestNotFound, "32 lowercase hexadecimal digits");
            }

            await AssertErrorAsync(await http.PutAsync($"{App}/requests/{id}/cancel", null), HttpStatusCode.NotFound, ErrorCodes.RequestNotFound, "can exist");
        }

        Assert.True(await RequestActivationsAsync() <= before + 2, "malformed ids activated request grains");
    }

    [Fact]
    public async Task Oversized_headers_and_request_lines_get_json_bodies()
    {
        using var http = gateway.NewClient();
        using var big = new HttpRequestMessage(HttpMethod.Get, "/health");
        big.Headers.Add("X-Big", new string('a', 60_000));

        await AssertErrorAsync(await http.SendAsync(big), HttpStatusCode.RequestHeaderFieldsTooLarge, "headers_too_large", "at most");
        await AssertErrorAsync(await http.GetAsync($"{App}/requests/{new string('a', 9000)}/status"), HttpStatusCode.RequestUriTooLong, "uri_too_long", "request line");
    }

    [Fact]
    public async Task A_client_that_sends_its_whole_oversized_body_before_reading_hears_the_413()
    {
        // As Python's urllib does: the whole body first, then the answer. A gateway that answers without reading it
        // resets the connection under the client's writes.
        var uri = new Uri(gateway.Url);
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(uri.Host, uri.Port);
        var stream = tcp.GetStream();
        var body = new byte[5 << 20];
        var head = $"POST {App} HTTP/1.1\r\nHost: {uri.Authority}\r\nAuthorization: Key {GatewayHost.ApiKey}\r\nContent-Type: application/json\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head));
        await stream.WriteAsync(body);

        using var reader = new StreamReader(stream, Encoding.UTF8);
        var answer = await reader.ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(30));

        Assert.StartsWith("HTTP/1.1 413", answer, StringComparison.Ordinal);
        Assert.Contains("\"error_code\":\"invalid_input\"", answer, StringComparison.Ordinal);
    }

    private async Task<int> RequestActivationsAsync()
    {
        var statistics = await gateway.Grains.GetGrain<IManagementGrain>(0).GetSimpleGrainStatistics();
        return statistics.Where(s => s.GrainType.Contains(nameof(RequestGrain), StringComparison.Ordinal)).Sum(s => s.ActivationCount);
    }
}
