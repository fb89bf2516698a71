using Microsoft.Extensions.Options;

namespace FalHints.Host.Gateway;

/// <summary>Fails the start on a bad setting of the gateway's file storage, naming the setting.</summary>
internal sealed class StorageOptionsValidator : IValidateOptions<StorageOptions>
{
    public ValidateOptionsResult Validate(string? name, StorageOptions options) =>
        options.MaxFileBytes > 0 && options.MaxInputFileBytes > 0 && options.MaxPendingUploads > 0 && options.UploadUrlLifetime > TimeSpan.Zero
            ? ValidateOptionsResult.Success
            : ValidateOptionsResult.Fail($"{StorageOptions.SectionName}: MaxFileBytes, MaxInputFileBytes, MaxPendingUploads and UploadUrlLifetime must be positive.");
}
