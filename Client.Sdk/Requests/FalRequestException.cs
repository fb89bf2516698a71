using FalHints.Client.Contracts;

namespace FalHints.Client.Requests;

/// <summary>A request that ended in an error; <see cref="Error"/> says which.</summary>
public sealed class FalRequestException : Exception
{
    /// <summary>Creates the exception for a failed request.</summary>
    public FalRequestException(string requestId, RequestError error)
        : base($"Request {requestId} failed ({error.Code}): {error.Message}")
    {
        RequestId = requestId;
        Error = error;
    }

    /// <summary>The failed request's id.</summary>
    public string RequestId { get; }

    /// <summary>The error code and message.</summary>
    public RequestError Error { get; }
}
