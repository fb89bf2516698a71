using System.Text.Json;

namespace FalHints.Router.Routing;

/// <summary>Reads an app's declared hint field from a request's input.</summary>
public static class HintFields
{
    /// <summary>The string value of the top-level field <paramref name="field"/> of <paramref name="inputJson"/>, or null.</summary>
    public static string? Extract(string inputJson, string field)
    {
        try
        {
            using var document = JsonDocument.Parse(inputJson);
            return document.RootElement.ValueKind == JsonValueKind.Object
                && document.RootElement.TryGetProperty(field, out var value)
                && value.ValueKind == JsonValueKind.String
                ? value.GetString()
                : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
