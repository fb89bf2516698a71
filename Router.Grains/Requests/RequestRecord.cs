using FalHints.Client.Contracts;

namespace FalHints.Router.Requests;

/// <summary>The stored state of one request.</summary>
[GenerateSerializer, Alias("falhints.RequestRecord")]
public sealed class RequestRecord
{
    /// <summary>The request, once submitted.</summary>
    [Id(0)]
    public InferenceRequest? Request { get; set; }

    /// <summary>When it was accepted.</summary>
    [Id(1)]
    public DateTimeOffset AcceptedAt { get; set; }

    /// <summary>Queued, in progress or completed.</summary>
    [Id(2)]
    public RequestState State { get; set; }

    /// <summary>The runner it runs or ran on.</summary>
    [Id(3)]
    public string? RunnerId { get; set; }

    /// <summary>Whether that runner held its hint.</summary>
    [Id(4)]
    public bool HintHit { get; set; }

    /// <summary>Runners tried.</summary>
    [Id(5)]
    public int Attempts { get; set; }

    /// <summary>The outcome, once completed.</summary>
    [Id(6)]
    public InferenceResult? Result { get; set; }

    /// <summary>When it completed.</summary>
    [Id(7)]
    public DateTimeOffset? CompletedAt { get; set; }

    /// <summary>What happened to it, oldest first.</summary>
    [Id(8)]
    public List<RequestLog> Logs { get; set; } = [];

    /// <summary>The caller asked to cancel it.</summary>
    [Id(9)]
    public bool CancelRequested { get; set; }

    /// <summary>Deliveries of its webhook tried so far.</summary>
    [Id(10)]
    public int WebhookAttempts { get; set; }

    /// <summary>Its webhook was delivered, given up, or is not owed (the submission was refused outright).</summary>
    [Id(11)]
    public bool WebhookDone { get; set; }

    /// <summary>It finished and its webhook is still owed: stores list it with the unfinished, so a node that starts delivers it.</summary>
    public bool WebhookPending => State == RequestState.Completed && Request?.Options?.Webhook is not null && !WebhookDone;
}

/// <summary>The grain storage that holds request state: memory by default, Redis when configured.</summary>
public static class RequestStorage
{
    /// <summary>The storage provider name silos must register.</summary>
    public const string Name = "falhints-requests";
}
