using System.Collections.Immutable;
using System.Text.Json;
using FalHints.Client.Contracts;

namespace FalHints.Router.Routing;

/// <summary>Checks a request's input against the limits its app declared (<see cref="AppRouting.InputLimits"/>).</summary>
public static class InputLimits
{
    /// <summary>What the input breaks, as a message for the caller, or null when it keeps every limit (or is not an object).</summary>
    public static string? Violation(string inputJson, ImmutableArray<InputLimit> limits)
    {
        if (limits.IsDefaultOrEmpty)
        {
            return null;
        }

        try
        {
            using var document = JsonDocument.Parse(inputJson);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                return null;
            }

            foreach (var limit in limits)
            {
                if (document.RootElement.TryGetProperty(limit.Field, out var value) && value.ValueKind == JsonValueKind.String
                    && value.GetString()!.Length is var length && length > limit.MaxLength)
                {
                    return $"The {limit.Field} is {length} characters long; at most {limit.MaxLength} are allowed.";
                }
            }

            return null;
        }
        catch (JsonException)
        {
            // The app names malformed input itself.
            return null;
        }
    }
}
