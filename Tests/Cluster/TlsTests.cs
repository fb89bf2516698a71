using System.Globalization;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using FalHints.Client.Apps;
using FalHints.Client.Requests;
using FalHints.Host.Hosting;
using FalHints.Tests.Support;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace FalHints.Tests.Cluster;

/// <summary>Mutual TLS on the cluster's connections: a client with the cluster's certificate is served, others are not.</summary>
public sealed class TlsTests : IDisposable
{
    private const string Password = "test-password";
    private readonly TempDirectory _certificates = new();
    private readonly TinyModelStore _models = new();

    [Fact]
    public async Task A_tls_cluster_serves_clients_with_an_accepted_certificate_and_refuses_the_others()
    {
        var (clusterCertificate, clusterThumbprint) = MakeCertificate("falhints-cluster");
        var (strangerCertificate, _) = MakeCertificate("stranger");
        var gatewayPort = HostProcess.FreeTcpPort().ToString(CultureInfo.InvariantCulture);
        await using var node = FalHintsWebHost.Build(new Dictionary<string, string?>
        {
            ["FalHints:ModelStore:Root"] = _models.Root,
            ["FalHints:Silo:Name"] = "tls-node",
            ["FalHints:Silo:SiloPort"] = HostProcess.FreeTcpPort().ToString(CultureInfo.InvariantCulture),
            ["FalHints:Silo:GatewayPort"] = gatewayPort,
            ["FalHints:Gateway:Url"] = $"http://127.0.0.1:{HostProcess.FreeTcpPort().ToString(CultureInfo.InvariantCulture)}",
            ["FalHints:Runners:CpuRunners"] = "1",
            ["FalHints:Storage:Mode"] = "memory",
            ["FalHints:Tls:CertificatePath"] = clusterCertificate,
            ["FalHints:Tls:CertificatePassword"] = Password,
            ["FalHints:Tls:TrustedThumbprints:0"] = clusterThumbprint,
            ["Logging:LogLevel:Default"] = "Warning",
        }, CancellationToken.None);
        await node.StartAsync();

        // The cluster's own certificate: connected over TLS, a request is served end to end.
        using (var client = await ConnectAsync(gatewayPort, clusterCertificate, clusterThumbprint))
        {
            var falhints = new FalHintsClient(client.Services.GetRequiredService<IGrainFactory>());
            var output = await falhints.RunAsync<AnyModelInput, AnyModelOutput>(AnyModel.AppId, new AnyModelInput(TinyModelStore.ModelIds[0], "over tls"), null)
                .WaitAsync(TimeSpan.FromSeconds(60));
            Assert.Equal("image/png", output.Image.ContentType);
            await client.StopAsync();
        }

        // No TLS at all, or a certificate the cluster does not accept: the connection is refused.
        await Assert.ThrowsAnyAsync<Exception>(() => ConnectAsync(gatewayPort, null, null));
        await Assert.ThrowsAnyAsync<Exception>(() => ConnectAsync(gatewayPort, strangerCertificate, clusterThumbprint));

        await node.StopAsync();
    }

    [Fact]
    public void With_pins_only_a_pinned_certificate_is_accepted_and_without_the_machine_trust_decides()
    {
        using var certificate = X509CertificateLoader.LoadPkcs12FromFile(MakeCertificate("pinned").Path, Password);
        var sha256 = certificate.GetCertHashString(HashAlgorithmName.SHA256);
        var spaced = string.Join(':', sha256.Chunk(2).Select(c => new string(c))).ToLowerInvariant();

        // Without pins: the machine's trust decides.
        Assert.True(ClusterTls.IsAccepted(certificate, SslPolicyErrors.None, new HashSet<string>()));
        Assert.False(ClusterTls.IsAccepted(certificate, SslPolicyErrors.RemoteCertificateChainErrors, new HashSet<string>()));

        // With pins: only a pinned certificate gets in, even one that chains to a trusted root does not otherwise.
        Assert.True(ClusterTls.IsAccepted(certificate, SslPolicyErrors.RemoteCertificateChainErrors, new HashSet<string> { ClusterTls.Normalize(spaced) }));
        Assert.True(ClusterTls.IsAccepted(certificate, SslPolicyErrors.RemoteCertificateChainErrors, new HashSet<string> { certificate.Thumbprint }));
        Assert.False(ClusterTls.IsAccepted(certificate, SslPolicyErrors.None, new HashSet<string> { new('A', 64) }));
        Assert.False(ClusterTls.IsAccepted(null, SslPolicyErrors.None, new HashSet<string>()));
    }

    [Fact]
    public void A_certificate_file_that_cannot_be_read_is_refused_naming_the_setting()
    {
        var tls = new ClusterTls { CertificatePath = Path.Combine(_certificates.Path, "missing.pfx") };

        var error = Assert.Throws<InvalidOperationException>(tls.LoadCertificate);

        Assert.Contains("FalHints:Tls:CertificatePath", error.Message, StringComparison.Ordinal);
    }

    public void Dispose()
    {
        _models.Dispose();
        _certificates.Dispose();
    }

    /// <summary>A self-signed certificate for server and client authentication, saved as PKCS#12; returns its path and SHA-256 thumbprint.</summary>
    private (string Path, string Thumbprint) MakeCertificate(string name)
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], critical: false));
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        var path = Path.Combine(_certificates.Path, $"{name}.pfx");
        File.WriteAllBytes(path, certificate.Export(X509ContentType.Pfx, Password));
        return (path, certificate.GetCertHashString(HashAlgorithmName.SHA256));
    }

    private static async Task<IHost> ConnectAsync(string gatewayPort, string? certificate, string? trusted)
    {
        var settings = new Dictionary<string, string?> { ["FalHints:Silo:GatewayPort"] = gatewayPort };
        if (certificate is not null)
        {
            settings["FalHints:Tls:CertificatePath"] = certificate;
            settings["FalHints:Tls:CertificatePassword"] = Password;
            settings["FalHints:Tls:TrustedThumbprints:0"] = trusted;
        }

        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.UseOrleansClient(c => c.UseFalHintsClustering(configuration, TimeSpan.FromSeconds(4)));
        var host = builder.Build();
        try
        {
            await host.StartAsync();
            return host;
        }
        catch
        {
            host.Dispose();
            throw;
        }
    }
}
