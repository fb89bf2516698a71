using FalHints.Client.Contracts;

namespace FalHints.Client.Requests;

/// <summary>
/// A request that ended in an error; <see cref="Error"/> says which. Catch a subclass for one kind of failure, or
/// this type for all of them; <see cref="From"/> picks the subclass for an error code.
/// </summary>
public class FalRequestException : Exception
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

    /// <summary>The exception type for <paramref name="error"/>'s code.</summary>
    public static FalRequestException From(string requestId, RequestError error) => error.Code switch
    {
        ErrorCodes.AppNotFound or ErrorCodes.EndpointNotFound => new AppNotFoundException(requestId, error),
        ErrorCodes.InvalidInput or ErrorCodes.ModelNotFound => new InvalidInputException(requestId, error),
        ErrorCodes.StartTimeout => new StartTimeoutException(requestId, error),
        ErrorCodes.QueueFull => new QueueFullException(requestId, error),
        ErrorCodes.Cancelled => new RequestCancelledException(requestId, error),
        ErrorCodes.RunnerFailed => new RunnerFailedException(requestId, error),
        _ => new FalRequestException(requestId, error),
    };
}

/// <summary>No runner serves the app (or the app has no such endpoint).</summary>
public sealed class AppNotFoundException(string requestId, RequestError error) : FalRequestException(requestId, error);

/// <summary>The input was refused: malformed, a missing field, a model id that is refused or not in the store.</summary>
public sealed class InvalidInputException(string requestId, RequestError error) : FalRequestException(requestId, error);

/// <summary>The request did not start within its start timeout.</summary>
public sealed class StartTimeoutException(string requestId, RequestError error) : FalRequestException(requestId, error);

/// <summary>The app's queue was full; nothing was run.</summary>
public sealed class QueueFullException(string requestId, RequestError error) : FalRequestException(requestId, error);

/// <summary>The request was cancelled.</summary>
public sealed class RequestCancelledException(string requestId, RequestError error) : FalRequestException(requestId, error);

/// <summary>Runners failed on every attempt (or the caller opted out of retries); the app itself did not report an error.</summary>
public sealed class RunnerFailedException(string requestId, RequestError error) : FalRequestException(requestId, error);
