namespace FalHints.Runner.Models;

/// <summary>A model id that is refused, missing or unreadable; <see cref="Code"/> is one of the request error codes.</summary>
public sealed class ModelStoreException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ModelStoreException(string code, string message, Exception? inner = null)
        : base(message, inner) => Code = code;

    /// <summary>The request error code (<c>invalid_input</c>, <c>model_not_found</c>, <c>model_corrupt</c>).</summary>
    public string Code { get; }
}
