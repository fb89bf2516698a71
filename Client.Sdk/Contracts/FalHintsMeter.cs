namespace FalHints.Client.Contracts;

/// <summary>The name of the meter FalHints' metrics are published under (OpenTelemetry, Prometheus).</summary>
public static class FalHintsMeter
{
    /// <summary><c>FalHints</c>.</summary>
    public const string Name = "FalHints";
}
