namespace FalHints.Client.Contracts;

/// <summary>Request ids are 32 lowercase hexadecimal digits (a GUID without dashes), made by the client that submits.</summary>
public static class RequestIds
{
    /// <summary>The length of every request id.</summary>
    public const int Length = 32;

    /// <summary>A new request id.</summary>
    public static string New() => Guid.NewGuid().ToString("N");

    /// <summary>True when <paramref name="requestId"/> has the shape of a request id, so it may name one; nothing is looked up.</summary>
    public static bool IsWellFormed(string? requestId) =>
        requestId is { Length: Length } && requestId.All(c => char.IsAsciiDigit(c) || c is >= 'a' and <= 'f');
}
