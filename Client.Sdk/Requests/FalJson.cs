using System.Text.Json;

namespace FalHints.Client.Requests;

/// <summary>The JSON conventions of fal apps: snake_case names, nulls omitted.</summary>
public static class FalJson
{
    /// <summary>Serializer options shared by clients and apps.</summary>
    public static JsonSerializerOptions Options { get; } = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
        RespectNullableAnnotations = true,
        RespectRequiredConstructorParameters = true,
    };
}
