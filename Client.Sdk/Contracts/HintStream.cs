namespace FalHints.Client.Contracts;

/// <summary>Names of the Orleans stream on which runners publish their hints, one stream per app.</summary>
public static class HintStream
{
    /// <summary>The stream provider name silos register.</summary>
    public const string ProviderName = "falhints";

    /// <summary>The stream namespace; the stream key is the app id.</summary>
    public const string Namespace = "runner-hints";
}
