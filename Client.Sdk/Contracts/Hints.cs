using System.Diagnostics.CodeAnalysis;

namespace FalHints.Client.Contracts;

/// <summary>What a routing hint may be: 1 to 1,024 characters without control characters (anything else goes, commas too).</summary>
public static class Hints
{
    /// <summary>The longest hint accepted.</summary>
    public const int MaxLength = 1024;

    /// <summary>Checks a request's hint (null: no hint, which is fine); on failure <paramref name="error"/> names the problem.</summary>
    public static bool TryValidate(string? hint, [NotNullWhen(false)] out string? error)
    {
        error = hint switch
        {
            null => null,
            "" => "The hint is empty; send no hint instead.",
            { Length: > MaxLength } => $"The hint is {hint.Length} characters long; at most {MaxLength} are allowed.",
            _ when hint.Any(char.IsControl) => "The hint contains control characters.",
            _ => null,
        };
        return error is null;
    }

    /// <summary>Checks a request's main hint and further hints.</summary>
    public static bool TryValidate(InferenceRequest request, [NotNullWhen(false)] out string? error)
    {
        if (!TryValidate(request.Hint, out error))
        {
            return false;
        }

        var more = request.Options?.MoreHints ?? [];
        foreach (var hint in more.IsDefault ? [] : more)
        {
            if (hint is null || !TryValidate(hint, out error))
            {
                error ??= "A further hint is null.";
                error = $"Further hints: {error}";
                return false;
            }
        }

        return true;
    }
}
