using System.Text.Encodings.Web;
using System.Text.Json;
using FalHints.Client.Requests;

namespace FalHints.Host.Gateway;

/// <summary>How the gateway writes JSON: fal's snake_case, and readable text in messages (the bodies are JSON, not HTML).</summary>
internal static class GatewayJson
{
    public static JsonSerializerOptions Options { get; } = new(FalJson.Options) { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
}
