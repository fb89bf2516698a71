using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Configuration;
using Orleans.Connections.Security;

namespace FalHints.Host.Hosting;

/// <summary>
/// Optional mutual TLS on the cluster's connections, silo to silo and client to silo (section <c>FalHints:Tls</c>).
/// Every party presents the certificate in <see cref="CertificatePath"/> (PKCS#12 with its private key) and requires
/// one from its peer. With <see cref="TrustedThumbprints"/> set, a peer is accepted only when its certificate's SHA-256
/// (or SHA-1) thumbprint is listed; without, when its certificate chains to a root the machine trusts (use a private
/// certificate authority for the cluster then: any certificate that chains to a trusted root gets in).
/// </summary>
public sealed class ClusterTls
{
    /// <summary>The configuration section.</summary>
    public const string SectionName = "FalHints:Tls";

    /// <summary>The certificate file (.pfx/.p12) this silo or client presents; unset: no TLS.</summary>
    public string? CertificatePath { get; set; }

    /// <summary>The certificate file's password, if it has one.</summary>
    public string? CertificatePassword { get; set; }

    /// <summary>Thumbprints (hex, colons and case ignored) of the peer certificates to accept, and no others.</summary>
    public IList<string> TrustedThumbprints { get; } = [];

    /// <summary>Whether TLS is configured.</summary>
    public bool Enabled => !string.IsNullOrWhiteSpace(CertificatePath);

    /// <summary>Reads the section; null when TLS is not configured.</summary>
    public static ClusterTls? From(IConfiguration configuration)
    {
        var tls = configuration.GetSection(SectionName).Get<ClusterTls>();
        return tls is { Enabled: true } ? tls : null;
    }

    /// <summary>Loads the certificate, with an error that names the setting when it cannot.</summary>
    /// <exception cref="InvalidOperationException">The file is missing, unreadable, or holds no private key.</exception>
    public X509Certificate2 LoadCertificate()
    {
        X509Certificate2 certificate;
        try
        {
            certificate = X509CertificateLoader.LoadPkcs12FromFile(CertificatePath!, CertificatePassword);
        }
        catch (Exception ex) when (ex is CryptographicException or IOException or UnauthorizedAccessException)
        {
            throw new InvalidOperationException($"{SectionName}:CertificatePath: '{CertificatePath}' cannot be read as a PKCS#12 certificate: {ex.Message}", ex);
        }

        if (!certificate.HasPrivateKey)
        {
            certificate.Dispose();
            throw new InvalidOperationException($"{SectionName}:CertificatePath: '{CertificatePath}' holds no private key; a party must be able to prove it owns its certificate.");
        }

        return certificate;
    }

    /// <summary>Requires a certificate from every peer and accepts pinned ones (or, with no pins, trusted ones).</summary>
    public void Configure(TlsOptions options)
    {
        var pinned = TrustedThumbprints.Select(Normalize).ToHashSet(StringComparer.Ordinal);
        options.RemoteCertificateMode = RemoteCertificateMode.RequireCertificate;
        options.RemoteCertificateValidation = (certificate, _, errors) => IsAccepted(certificate, errors, pinned);
    }

    /// <summary>
    /// With pins, a peer certificate is accepted only when its thumbprint is pinned (whatever signs it); without, only
    /// when it validates against the machine's trusted roots.
    /// </summary>
    public static bool IsAccepted(X509Certificate2? certificate, SslPolicyErrors errors, IReadOnlySet<string> pinned) =>
        certificate is not null && (pinned.Count > 0
            ? pinned.Contains(Normalize(certificate.GetCertHashString(HashAlgorithmName.SHA256))) || pinned.Contains(Normalize(certificate.Thumbprint))
            : errors == SslPolicyErrors.None);

    /// <summary>A thumbprint as upper-case hex without separators.</summary>
    public static string Normalize(string thumbprint) =>
        new([.. thumbprint.Where(Uri.IsHexDigit).Select(char.ToUpperInvariant)]);
}
