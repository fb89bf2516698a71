using System.Net;
using System.Text;
using System.Text.Json;
using CsCheck;
using FalHints.Client.Apps;
using FalHints.Client.Contracts;
using FalHints.Client.Requests;
using FalHints.Runner.Models;
using FalHints.Tests.Gateway;
using FalHints.Tests.Support;
using Xunit.Abstractions;

namespace FalHints.Tests.Hardening;

/// <summary>Generated hostile input: every answer is a clear error or a normal result, and the cluster stays consistent.</summary>
public sealed class FuzzTests(GatewayHost node, ITestOutputHelper output) : IClassFixture<GatewayHost>
{
    private static readonly Gen<string> Nasty = Gen.OneOf(
        Gen.String[Gen.Char["abc/._- ,:\\~%\0\n\t\u00e9\u4e2d\ud800\udc00"], 0, 40],
        Gen.OneOf("", " ", "..", "../..", "/etc/passwd", "tiny/alpha", "tiny/../tiny/alpha", "https://hub.example/m", "C:\\models\\x",
            "tiny/alpha\0", "\ud800", "a,b,c", "ünï/cödé", new string('x', 1 << 20), new string('/', 300)),
        Gen.String);

    [Fact]
    public void Model_ids_resolve_inside_the_store_or_fail_with_a_named_error()
    {
        var store = new ModelStore(Path.Combine(Path.GetTempPath(), "falhints-fuzz-store"));
        var cases = 0;

        Nasty.Sample(id =>
        {
            Interlocked.Increment(ref cases);
            try
            {
                var model = store.Resolve(id);
                Assert.StartsWith(store.Root + Path.DirectorySeparatorChar, model.Directory, StringComparison.Ordinal);
            }
            catch (ModelStoreException ex)
            {
                Assert.Contains(ex.Code, new[] { ErrorCodes.InvalidInput, ErrorCodes.ModelNotFound });
                Assert.False(string.IsNullOrWhiteSpace(ex.Message));
            }
        }, iter: 5_000, threads: 1);

        output.WriteLine($"{cases} model ids");
    }

    [Fact]
    public async Task Sdk_answers_hostile_hints_inputs_and_app_ids_clearly_and_the_router_stays_consistent()
    {
        var client = new FalHintsClient(node.Grains);
        var cases = 0;
        var refused = 0;
        var completed = 0;
        var gen = Gen.Select(Nasty, Nasty, Gen.OneOf(Gen.OneOf(AnyModel.AppId), Nasty), Gen.Int[0, 3]);

        await gen.SampleAsync(async (hint, model, appId, shape) =>
        {
            Interlocked.Increment(ref cases);
            var input = shape switch
            {
                0 => JsonSerializer.Serialize(new AnyModelInput(model.Length > 300 ? model[..300] : model, "fuzz"), FalJson.Options),
                1 => "{\"model\": 42, \"prompt\": []}",
                2 => model,
                _ => "{}",
            };
            try
            {
                var result = await client.SubmitAsync(appId, input, hint.Length == 0 ? null : hint).WaitAsync(TimeSpan.FromSeconds(60));
                Interlocked.Increment(ref completed);
                Assert.True(result.Error is null || !string.IsNullOrWhiteSpace(result.Error.Message));
            }
            catch (ArgumentException ex)
            {
                Interlocked.Increment(ref refused);
                Assert.False(string.IsNullOrWhiteSpace(ex.Message));
            }
        }, iter: 150, threads: 1);

        var router = node.Grains.GetGrain<IRouterGrain>(AnyModel.AppId);
        var snapshot = await Eventually.ValueAsync(router.GetSnapshotAsync, s => s.Queued == 0 && s.InFlight == 0, TimeSpan.FromSeconds(30), "the router idle");
        foreach (var runner in snapshot.Runners)
        {
            var state = (await node.Grains.GetGrain<IRunnerGrain>(runner.RunnerId).GetStatusAsync()).Apps.Single(a => a.AppId == AnyModel.AppId);
            var indexed = await Eventually.ValueAsync(router.GetSnapshotAsync,
                s => s.Runners.Single(r => r.RunnerId == runner.RunnerId).Sequence >= state.Sequence, TimeSpan.FromSeconds(30), "the index caught up");
            Assert.Equal<string>(state.Hints, indexed.Runners.Single(r => r.RunnerId == runner.RunnerId).Hints);
        }

        output.WriteLine($"{cases} SDK cases: {refused} refused with ArgumentException, {completed} completed (result or named error)");
    }

    [Fact]
    public async Task Gateway_answers_hostile_http_requests_with_4xx_json_never_5xx()
    {
        using var http = node.NewClient();
        var cases = 0;
        // Header values an HTTP client can send at all: visible ASCII, spaces and tabs.
        var header = Gen.OneOf(Gen.String[Gen.Char["abc-/ ,.:\t"], 0, 20], Gen.OneOf("normal", "low", "urgent", "-1", "0", "1e12", "NaN", "30", "", new string('h', 5000)));
        var path = Gen.OneOf(Gen.OneOf("/falhints/any-model", "/falhints/any-model/extra", "/x/y", "/.../...", "/a%2Fb/c", "/falhints/any-model/requests/zzz"),
            Gen.String[Gen.Char["abc-._~%/"], 1, 30].Select(s => "/" + s));
        var body = Gen.OneOf(Gen.OneOf("{}", "[]", "null", "{\"model\":\"tiny/alpha\",\"prompt\":\"x\"}", "{\"model\":", "\"s\"", "{\"model\":\"../../etc/passwd\",\"prompt\":\"x\"}"),
            Gen.String[Gen.Char["{}[]\":,ab01 \\"], 0, 60]);

        await Gen.Select(path, body, header, header, header).SampleAsync(async (target, content, hint, priority, timeout) =>
        {
            Interlocked.Increment(ref cases);
            // An absolute URI, so a path such as //host is sent as a path and not read as another host.
            using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(node.Url + target)) { Content = new StringContent(content, Encoding.UTF8, "application/json") };
            request.Headers.TryAddWithoutValidation("X-Fal-Runner-Hint", hint);
            request.Headers.TryAddWithoutValidation("X-Fal-Queue-Priority", priority);
            request.Headers.TryAddWithoutValidation("X-Fal-Request-Timeout", timeout);

            using var response = await http.SendAsync(request);

            Assert.True((int)response.StatusCode < 500, $"{(int)response.StatusCode} for POST {target} {content}");
            if (response.StatusCode != HttpStatusCode.OK)
            {
                using var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
                Assert.False(string.IsNullOrWhiteSpace(error.RootElement.GetProperty("detail").GetString()));
            }
        }, iter: 300, threads: 1);

        output.WriteLine($"{cases} HTTP cases");
    }
}
