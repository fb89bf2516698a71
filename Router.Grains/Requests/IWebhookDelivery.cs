using FalHints.Client.Contracts;

namespace FalHints.Router.Requests;

/// <summary>
/// Posts a request's outcome to its webhook, once per call; the request grain keeps the attempts (in its record) and
/// waits between them. A node with an HTTP gateway provides it; a request grain on a node without one leaves the
/// webhook owed, and a node that has one delivers it when it next activates the request.
/// </summary>
public interface IWebhookDelivery
{
    /// <summary>Deliveries tried per webhook, the first included.</summary>
    int MaxAttempts { get; }

    /// <summary>The wait after failed attempt <paramref name="attempt"/> (1 for the first).</summary>
    TimeSpan DelayAfter(int attempt);

    /// <summary>Posts <paramref name="result"/> to <paramref name="target"/>; null when the receiver took it (2xx), else what went wrong.</summary>
    Task<string?> DeliverAsync(InferenceResult result, WebhookTarget target, CancellationToken cancellationToken);
}
