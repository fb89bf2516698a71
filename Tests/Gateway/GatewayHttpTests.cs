using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using FalHints.Client.Contracts;
using FalHints.Tests.Support;

namespace FalHints.Tests.Gateway;

public sealed class GatewayHttpTests(GatewayHost gateway) : IClassFixture<GatewayHost>
{
    private const string App = "/falhints/any-model";

    private static StringContent Body(string json) => new(json, Encoding.UTF8, "application/json");

    private static async Task<JsonElement> JsonOf(HttpResponseMessage response)
    {
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        using var document = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return document.RootElement.Clone();
    }

    private static async Task AssertErrorAsync(HttpResponseMessage response, HttpStatusCode status, string code, string mentions)
    {
        Assert.Equal(status, response.StatusCode);
        var body = await JsonOf(response);
        Assert.Equal(code, body.GetProperty("error_code").GetString());
        Assert.Contains(mentions, body.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Submit_status_and_result_follow_fals_queue_api_and_name_the_runner()
    {
        using var http = gateway.NewClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, App) { Content = Body("""{"model":"tiny/beta","prompt":"a heron"}""") };
        request.Headers.Add("X-Fal-Runner-Hint", "tiny/beta");
        request.Headers.Add("X-Fal-Queue-Priority", "low");
        request.Headers.Add("X-Fal-Request-Timeout", "30");

        var submitted = await JsonOf(await http.SendAsync(request));
        var id = submitted.GetProperty("request_id").GetString()!;
        Assert.Equal("IN_QUEUE", submitted.GetProperty("status").GetString());
        Assert.Equal($"{gateway.Url}{App}/requests/{id}", submitted.GetProperty("response_url").GetString());

        var status = await Eventually.ValueAsync(async () => await JsonOf(await http.GetAsync($"{App}/requests/{id}/status")),
            s => s.GetProperty("status").GetString() == "COMPLETED", TimeSpan.FromSeconds(30), "completed");
        var result = await http.GetAsync($"{App}/requests/{id}");
        Assert.Equal(HttpStatusCode.OK, result.StatusCode);
        Assert.Equal(status.GetProperty("runner_id").GetString(), result.Headers.GetValues("X-FalHints-Runner").Single());
        Assert.Equal("false", result.Headers.GetValues("X-FalHints-Hint-Hit").Single());
        var image = (await JsonOf(result)).GetProperty("image");
        var file = await http.GetAsync(image.GetProperty("url").GetString());
        Assert.Equal("image/png", file.Content.Headers.ContentType?.MediaType);
        Assert.Equal((128, 128), Png.AssertValid(await file.Content.ReadAsByteArrayAsync()));
    }

    [Fact]
    public async Task A_cluster_that_cannot_answer_gets_a_retryable_503_not_a_500()
    {
        using var http = gateway.NewClient();
        var id = $"{UnavailableRequestFilter.Prefix}{Guid.NewGuid():N}"[..RequestIds.Length];

        foreach (var path in new[] { $"{App}/requests/{id}/status", $"{App}/requests/{id}" })
        {
            var response = await http.GetAsync(path);
            await AssertErrorAsync(response, HttpStatusCode.ServiceUnavailable, ErrorCodes.ClusterUnavailable, "retry");
            Assert.Equal("1", response.Headers.GetValues("Retry-After").Single());
        }
    }

    [Fact]
    public async Task Status_stream_sends_server_sent_events_until_completed()
    {
        using var http = gateway.NewClient();
        var submitted = await JsonOf(await http.PostAsync(App, Body("""{"model":"tiny/gamma","prompt":"a stream"}""")));
        var id = submitted.GetProperty("request_id").GetString();

        using var response = await http.GetAsync($"{App}/requests/{id}/status/stream", HttpCompletionOption.ResponseHeadersRead);
        var text = await response.Content.ReadAsStringAsync();

        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var events = text.Split("\n\n", StringSplitOptions.RemoveEmptyEntries).Select(e => JsonDocument.Parse(e["data: ".Length..]).RootElement).ToList();
        Assert.Equal("COMPLETED", events[^1].GetProperty("status").GetString());
    }

    [Fact]
    public async Task Models_lists_the_model_ids_of_the_store()
    {
        using var http = gateway.NewClient();

        var models = await http.GetFromJsonAsync<string[]>("/models");

        Assert.Equal(TinyModelStore.ModelIds.Order(StringComparer.Ordinal), models);
    }

    [Fact]
    public async Task Api_keys_are_enforced_and_any_configured_key_works()
    {
        using var anonymous = gateway.NewClient(key: null);
        using var wrong = gateway.NewClient(key: "nope");
        using var second = gateway.NewClient(key: "test-key-2");

        await AssertErrorAsync(await anonymous.GetAsync("/models"), HttpStatusCode.Unauthorized, "unauthorized", "Authorization: Key");
        await AssertErrorAsync(await wrong.GetAsync("/models"), HttpStatusCode.Unauthorized, "unauthorized", "not valid");
        Assert.Equal(HttpStatusCode.OK, (await second.GetAsync("/models")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync("/health")).StatusCode);

        // The dashboard and the runners view are behind the same keys; a browser may send the key as a Basic password.
        using var browser = gateway.NewClient(key: null);
        browser.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue(
            "Basic", Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes($"operator:{GatewayHost.ApiKey}")));
        foreach (var page in new[] { "/dashboard/", "/runners", "/api/runners" })
        {
            using var refused = await anonymous.GetAsync(page);
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
            Assert.Contains("Basic", refused.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);
            Assert.Equal(HttpStatusCode.OK, (await second.GetAsync(page)).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await browser.GetAsync(page)).StatusCode);
        }

        // Basic credentials, which a browser resends on its own, do not reach the queue API.
        Assert.Equal(HttpStatusCode.Unauthorized, (await browser.GetAsync("/models")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await browser.PostAsync(App, Body("{}"))).StatusCode);
    }

    [Theory]
    [InlineData("{ not json", HttpStatusCode.BadRequest, "not valid JSON")]
    [InlineData("[1, 2, 3]", HttpStatusCode.UnprocessableEntity, "must be a JSON object")]
    [InlineData("\"text\"", HttpStatusCode.UnprocessableEntity, "must be a JSON object")]
    public async Task Malformed_bodies_get_a_4xx_that_names_the_problem(string body, HttpStatusCode status, string mentions)
    {
        using var http = gateway.NewClient();

        await AssertErrorAsync(await http.PostAsync(App, Body(body)), status, ErrorCodes.InvalidInput, mentions);
    }

    [Fact]
    public async Task An_oversized_body_is_refused_with_413()
    {
        using var http = gateway.NewClient();
        var huge = $$"""{"model":"tiny/alpha","prompt":"{{new string('x', 100_000)}}"}""";

        var response = await http.PostAsync(App, Body(huge));

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Equal(ErrorCodes.InvalidInput, (await JsonOf(response)).GetProperty("error_code").GetString());
    }

    [Theory]
    [InlineData("X-Fal-Queue-Priority", "urgent", "X-Fal-Queue-Priority")]
    [InlineData("X-Fal-Request-Timeout", "-5", "X-Fal-Request-Timeout")]
    [InlineData("X-Fal-Request-Timeout", "soon", "X-Fal-Request-Timeout")]
    [InlineData("X-Fal-Request-Timeout", "1e12", "X-Fal-Request-Timeout")]
    [InlineData("X-Fal-Runner-Hint", "", "X-Fal-Runner-Hint")]
    public async Task Bad_headers_get_a_400_that_names_the_header(string header, string value, string mentions)
    {
        using var http = gateway.NewClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, App) { Content = Body("""{"model":"tiny/alpha","prompt":"x"}""") };
        request.Headers.TryAddWithoutValidation(header, value);

        await AssertErrorAsync(await http.SendAsync(request), HttpStatusCode.BadRequest, ErrorCodes.InvalidInput, mentions);
    }

    [Fact]
    public async Task Unknown_requests_apps_and_routes_get_404s_with_json_bodies()
    {
        using var http = gateway.NewClient();

        await AssertErrorAsync(await http.GetAsync($"{App}/requests/no-such-id/status"), HttpStatusCode.NotFound, ErrorCodes.RequestNotFound, "no-such-id");
        await AssertErrorAsync(await http.GetAsync($"{App}/requests/no-such-id"), HttpStatusCode.NotFound, ErrorCodes.RequestNotFound, "no-such-id");
        await AssertErrorAsync(await http.PutAsync($"{App}/requests/no-such-id/cancel", null), HttpStatusCode.NotFound, ErrorCodes.RequestNotFound, "no-such-id");
        await AssertErrorAsync(await http.PostAsync("/bad%20owner/app", Body("{}")), HttpStatusCode.BadRequest, ErrorCodes.InvalidInput, "owner/name");
        var missing = await http.GetAsync("/files/0000.png");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Equal("file_not_found", (await JsonOf(missing)).GetProperty("error_code").GetString());
    }

    [Fact]
    public async Task A_failed_request_has_a_result_status_that_names_the_error()
    {
        using var http = gateway.NewClient();
        var submitted = await JsonOf(await http.PostAsync(App, Body("""{"model":"tiny/nope","prompt":"x"}""")));
        var id = submitted.GetProperty("request_id").GetString();
        await Eventually.ValueAsync(async () => await JsonOf(await http.GetAsync($"{App}/requests/{id}/status")),
            s => s.GetProperty("status").GetString() == "COMPLETED", TimeSpan.FromSeconds(30), "completed");

        await AssertErrorAsync(await http.GetAsync($"{App}/requests/{id}"), HttpStatusCode.UnprocessableEntity, ErrorCodes.ModelNotFound, "'tiny/nope'");
    }

    [Fact]
    public async Task Metrics_are_published_for_prometheus()
    {
        using var http = gateway.NewClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, App) { Content = Body("""{"model":"tiny/alpha","prompt":"measured"}""") };
        request.Headers.Add("X-Fal-Runner-Hint", "tiny/alpha");
        var id = (await JsonOf(await http.SendAsync(request))).GetProperty("request_id").GetString();
        await Eventually.ValueAsync(async () => await JsonOf(await http.GetAsync($"{App}/requests/{id}/status")),
            s => s.GetProperty("status").GetString() == "COMPLETED", TimeSpan.FromSeconds(30), "completed");

        var metrics = await Eventually.ValueAsync(() => http.GetStringAsync("/metrics"),
            text => text.Contains("falhints_request_inference_time", StringComparison.Ordinal), TimeSpan.FromSeconds(30), "inference times exported");

        Assert.Contains("falhints_request_queue_wait", metrics, StringComparison.Ordinal);
        Assert.Contains("falhints_pipeline_load_time", metrics, StringComparison.Ordinal);
        Assert.Matches("falhints_router_(hits|fallbacks)", metrics);
    }

    [Fact]
    public async Task Each_app_has_an_openapi_document_made_from_its_input_and_output_types()
    {
        using var http = gateway.NewClient();

        var text = await http.GetStringAsync($"{App}/openapi.json");
        using var document = JsonDocument.Parse(text);
        var root = document.RootElement;
        var paths = root.GetProperty("paths");
        var schemas = root.GetProperty("components").GetProperty("schemas");

        Assert.StartsWith("3.", root.GetProperty("openapi").GetString(), StringComparison.Ordinal);
        Assert.Equal("falhints/any-model", root.GetProperty("info").GetProperty("title").GetString());
        Assert.Equal(
            [App, $"{App}/requests/{{request_id}}", $"{App}/requests/{{request_id}}/cancel", $"{App}/requests/{{request_id}}/status", $"{App}/stream", $"/run{App}", $"/run{App}/stream"],
            paths.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal));
        var input = Schema(paths.GetProperty(App).GetProperty("post").GetProperty("requestBody"));
        Assert.Equal(["model", "prompt"], schemas.GetProperty(input).GetProperty("properties").EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal));
        var output = Schema(paths.GetProperty($"{App}/requests/{{request_id}}").GetProperty("get").GetProperty("responses").GetProperty("200"));
        Assert.True(schemas.GetProperty(output).GetProperty("properties").TryGetProperty("image", out _), text);
        var step = Schema(paths.GetProperty($"/run{App}/stream").GetProperty("post").GetProperty("responses").GetProperty("200"));
        Assert.True(schemas.GetProperty(step).GetProperty("properties").TryGetProperty("steps", out _), text);

        await AssertErrorAsync(await http.GetAsync("/nobody/nothing/openapi.json"), HttpStatusCode.NotFound, ErrorCodes.AppNotFound, "nobody/nothing");

        static string Schema(JsonElement withContent) =>
            withContent.GetProperty("content").EnumerateObject().First().Value.GetProperty("schema").GetProperty("$ref").GetString()!.Split('/')[^1];
    }

    [Fact]
    public async Task Errors_carry_fals_error_type_in_the_body_and_headers()
    {
        using var http = gateway.NewClient();

        var missing = await http.GetAsync($"{App}/requests/no-such-id");
        var body = await JsonOf(missing);

        Assert.Equal("request_not_found", body.GetProperty("error_type").GetString());
        Assert.Equal("request_not_found", missing.Headers.GetValues("X-Fal-Error-Type").Single());
        Assert.Equal("false", missing.Headers.GetValues("X-Fal-Retryable").Single());
        var bad = await http.PostAsync(App, Body("{ not json"));
        Assert.Equal("bad_request", (await JsonOf(bad)).GetProperty("error_type").GetString());
    }

    [Fact]
    public async Task Unknown_apps_are_refused_at_once_and_get_no_router()
    {
        using var http = gateway.NewClient();
        var management = gateway.Grains.GetGrain<IManagementGrain>(0);
        async Task<int> RoutersAsync() => (await management.GetSimpleGrainStatistics())
            .Where(s => s.GrainType.Contains("RouterGrain", StringComparison.Ordinal)).Sum(s => s.ActivationCount);
        await http.PostAsync(App, Body("""{"model":"tiny/alpha","prompt":"a known app"}"""));
        var before = await RoutersAsync();
        Assert.True(before > 0, "the known app's router is counted");

        var clock = System.Diagnostics.Stopwatch.StartNew();
        for (var i = 0; i < 20; i++)
        {
            await AssertErrorAsync(await http.PostAsync($"/made-up-{i}/app", Body("{}")), HttpStatusCode.NotFound, ErrorCodes.AppNotFound, $"made-up-{i}/app");
        }

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"20 refusals took {clock.Elapsed}");
        Assert.Equal(before, await RoutersAsync());
    }

    [Fact]
    public async Task Uploads_need_a_key_to_start_are_good_for_one_put_and_are_served_back()
    {
        using var anonymous = gateway.NewClient(key: null);
        using var http = gateway.NewClient();
        var initiate = Body("""{"content_type":"text/plain","file_name":"notes.txt"}""");

        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.PostAsync("/storage/upload/initiate", initiate)).StatusCode);
        var urls = await JsonOf(await http.PostAsync("/storage/upload/initiate", Body("""{"content_type":"text/plain","file_name":"notes.txt"}""")));
        var upload = urls.GetProperty("upload_url").GetString()!;
        var file = urls.GetProperty("file_url").GetString()!;
        Assert.EndsWith(".txt", file, StringComparison.Ordinal);

        // The upload URL is its own credential, as fal's signed URLs are; it works once.
        Assert.Equal(HttpStatusCode.OK, (await anonymous.PutAsync(upload, new StringContent("hello"))).StatusCode);
        await AssertErrorAsync(await anonymous.PutAsync(upload, new StringContent("again")), HttpStatusCode.NotFound, "upload_not_found", "initiate the upload again");
        Assert.Equal("hello", await http.GetStringAsync(file));

        var second = (await JsonOf(await http.PostAsync("/storage/upload/initiate", Body("{}")))).GetProperty("upload_url").GetString()!;
        await AssertErrorAsync(await anonymous.PutAsync(second, new ByteArrayContent(new byte[300_000])), HttpStatusCode.RequestEntityTooLarge, ErrorCodes.InvalidInput, "MaxFileBytes");
    }
}
