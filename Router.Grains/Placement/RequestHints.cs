using FalHints.Client.Contracts;

namespace FalHints.Router.Placement;

/// <summary>A request's hints in order of preference: the main hint, then the further ones.</summary>
public static class RequestHints
{
    /// <summary>The hints of <paramref name="request"/>, most specific first, without duplicates or nulls.</summary>
    public static IEnumerable<string> Of(RequestTicket request)
    {
        if (request.Request.Hint is { } hint)
        {
            yield return hint;
        }

        var more = request.Options.MoreHints;
        if (more.IsDefaultOrEmpty)
        {
            yield break;
        }

        foreach (var extra in more)
        {
            if (extra is not null && !string.Equals(extra, request.Request.Hint, StringComparison.Ordinal))
            {
                yield return extra;
            }
        }
    }
}
