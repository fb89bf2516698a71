namespace FalHints.Host.Gateway;

/// <summary>The gateway's file storage for <c>fal.storage.upload</c> (section <c>FalHints:Gateway:Storage</c>).</summary>
public sealed class StorageOptions
{
    /// <summary>The configuration section.</summary>
    public const string SectionName = "FalHints:Gateway:Storage";

    /// <summary>The largest file accepted, in bytes.</summary>
    public long MaxFileBytes { get; set; } = 10L << 20;

    /// <summary>How long an upload URL handed out by <c>/storage/upload/initiate</c> stays valid (it is good for one upload).</summary>
    public TimeSpan UploadUrlLifetime { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Upload URLs handed out and not used yet, at most; more initiations are refused until some are used or expire.</summary>
    public int MaxPendingUploads { get; set; } = 1000;

    /// <summary>
    /// The most bytes of stored files one request's input may name: the gateway passes such files to the app inside the
    /// input, as <c>data:</c> URLs.
    /// </summary>
    public long MaxInputFileBytes { get; set; } = 32L << 20;
}
