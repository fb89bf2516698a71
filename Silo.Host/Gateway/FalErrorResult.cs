using FalHints.Client.Contracts;
using Microsoft.AspNetCore.Http;

namespace FalHints.Host.Gateway;

/// <summary>
/// An error in fal's request-error shape: <c>{"detail": "...", "error_type": "..."}</c> with the same type in the
/// <c>X-Fal-Error-Type</c> header and <c>X-Fal-Retryable</c> saying whether the same call may succeed later. The body also
/// carries FalHints' own <c>error_code</c> (one of <see cref="ErrorCodes"/>), which names the failure more precisely.
/// </summary>
internal sealed class FalErrorResult(int status, string code, string detail) : IResult
{
    /// <summary>fal's header with the error's type.</summary>
    public const string ErrorTypeHeader = "X-Fal-Error-Type";

    /// <summary>fal's header saying whether retrying the same call may succeed.</summary>
    public const string RetryableHeader = "X-Fal-Retryable";

    /// <summary>fal's name for the failure where fal has one (its request error types), else FalHints' code.</summary>
    public static string ErrorType(string code) => code switch
    {
        ErrorCodes.RequestTimeout or ErrorCodes.StartTimeout => "request_timeout",
        ErrorCodes.RunnerFailed => "runner_disconnected",
        ErrorCodes.AppError => "runner_server_error",
        ErrorCodes.Cancelled => "client_cancelled",
        ErrorCodes.InvalidInput => "bad_request",
        _ => code,
    };

    /// <summary>Calls worth repeating unchanged: the cluster was busy or changing, or the queue was full.</summary>
    public static bool IsRetryable(string code) => code is ErrorCodes.ClusterUnavailable or ErrorCodes.QueueFull;

    /// <inheritdoc />
    public Task ExecuteAsync(HttpContext httpContext)
    {
        var type = ErrorType(code);
        httpContext.Response.Headers[ErrorTypeHeader] = type;
        httpContext.Response.Headers[RetryableHeader] = IsRetryable(code) ? "true" : "false";
        return Results.Json(new { detail, error_type = type, error_code = code }, GatewayJson.Options, statusCode: status).ExecuteAsync(httpContext);
    }
}
