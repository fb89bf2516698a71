using System.Diagnostics.CodeAnalysis;
using System.Text.RegularExpressions;

namespace FalHints.Client.Contracts;

/// <summary>App ids are <c>owner/name</c>: two segments of letters, digits, '.', '_' or '-'.</summary>
public static partial class AppIds
{
    /// <summary>The longest app id accepted.</summary>
    public const int MaxLength = 128;

    /// <summary>Checks an app id; on failure <paramref name="error"/> says what is wrong with it.</summary>
    public static bool TryValidate(string? appId, [NotNullWhen(false)] out string? error)
    {
        if (string.IsNullOrEmpty(appId))
        {
            error = "The app id is empty; expected 'owner/name'.";
            return false;
        }

        if (appId.Length > MaxLength)
        {
            error = $"The app id is {appId.Length} characters long; at most {MaxLength} are allowed.";
            return false;
        }

        if (!Pattern().IsMatch(appId))
        {
            error = "The app id must look like 'owner/name' (letters, digits, '.', '_' or '-' in each part).";
            return false;
        }

        error = null;
        return true;
    }

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$", RegexOptions.CultureInvariant)]
    private static partial Regex Pattern();
}
