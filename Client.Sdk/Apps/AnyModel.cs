namespace FalHints.Client.Apps;

/// <summary>The app id under which the default host serves <see cref="AnyModelInput"/> requests.</summary>
public static class AnyModel
{
    /// <summary><c>falhints/any-model</c>.</summary>
    public const string AppId = "falhints/any-model";
}

/// <summary>Input of the any-model app: which model of the local store, and the prompt.</summary>
/// <param name="Model">A model id of the local store, <c>owner/name</c>; also the natural hint.</param>
/// <param name="Prompt">The text prompt.</param>
public sealed record AnyModelInput(string Model, string Prompt);

/// <summary>Output of the any-model app.</summary>
public sealed record AnyModelOutput(FalImage Image);

/// <summary>One event of the any-model app's <c>/stream</c> endpoint: the image after <paramref name="Step"/> of <paramref name="Steps"/> denoising steps (the last is final).</summary>
public sealed record AnyModelStep(FalImage Image, int Step, int Steps);

/// <summary>An image in fal's file shape; <see cref="Url"/> is a <c>data:</c> URI holding the bytes.</summary>
public sealed record FalImage(string Url, string ContentType, string FileName, long FileSize, int Width, int Height)
{
    /// <summary>Decodes the bytes of a <c>data:</c> URL.</summary>
    /// <exception cref="FormatException">The URL is not a base64 data URI.</exception>
    public byte[] DecodeDataUrl() => DataUrl.Decode(Url).Bytes;
}
