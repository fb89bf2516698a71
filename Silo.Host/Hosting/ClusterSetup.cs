using System.Net;
using System.Net.Sockets;
using FalHints.Client.Requests;
using FalHints.Router.Hosting;
using FalHints.Router.Requests;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Orleans.Persistence;
using Orleans.Runtime.Hosting;
using Orleans.Storage;
using StackExchange.Redis;

namespace FalHints.Host.Hosting;

/// <summary>How silos find each other (section <c>FalHints:Cluster</c>).</summary>
public sealed class ClusterSettings
{
    /// <summary>The configuration section.</summary>
    public const string SectionName = "FalHints:Cluster";

    /// <summary>One silo on this machine, nothing to install (the default).</summary>
    public const string Localhost = "localhost";

    /// <summary>Membership (and request state) in Redis: several silos, on one machine or many.</summary>
    public const string Redis = "redis";

    /// <summary><see cref="Localhost"/> or <see cref="Redis"/>.</summary>
    public string Mode { get; set; } = Localhost;

    /// <summary>The Redis connection string, e.g. <c>10.0.0.5:6379,password=...</c> (Redis mode).</summary>
    public string? RedisConnection { get; set; }

    /// <summary>The cluster id; silos and clients of one cluster share it.</summary>
    public string ClusterId { get; set; } = "falhints";

    /// <summary>The service id; keeps stored state apart between services sharing a Redis.</summary>
    public string ServiceId { get; set; } = "falhints";

    /// <summary>How often a node checks that it is a live member and can reach its request store (<c>/health</c>).</summary>
    public TimeSpan HealthCheckInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How long a node whose row the membership table lost keeps running (unhealthy) before it exits to be restarted.</summary>
    public TimeSpan MembershipLossExitAfter { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>True in Redis mode.</summary>
    public bool UsesRedis => string.Equals(Mode, Redis, StringComparison.OrdinalIgnoreCase);

    /// <summary>Reads and checks the section (before the host is built: it chooses the clustering); a bad setting is an error that names it.</summary>
    public static ClusterSettings From(IConfiguration configuration)
    {
        var settings = configuration.GetSection(SectionName).Get<ClusterSettings>() ?? new ClusterSettings();
        var result = new ClusterSettingsValidator().Validate(null, settings);
        return result.Failed ? throw new OptionsValidationException(SectionName, typeof(ClusterSettings), result.Failures) : settings;
    }
}

/// <summary>Checks <see cref="ClusterSettings"/>, naming the setting at fault.</summary>
internal sealed class ClusterSettingsValidator : IValidateOptions<ClusterSettings>
{
    private const string Section = ClusterSettings.SectionName;

    public ValidateOptionsResult Validate(string? name, ClusterSettings options)
    {
        if (!options.UsesRedis && !string.Equals(options.Mode, ClusterSettings.Localhost, StringComparison.OrdinalIgnoreCase))
        {
            return ValidateOptionsResult.Fail($"{Section}:Mode is '{options.Mode}'; use '{ClusterSettings.Localhost}' or '{ClusterSettings.Redis}'.");
        }

        if (options.HealthCheckInterval <= TimeSpan.Zero || options.MembershipLossExitAfter <= TimeSpan.Zero)
        {
            return ValidateOptionsResult.Fail($"{Section}:HealthCheckInterval and MembershipLossExitAfter must be positive.");
        }

        return options.UsesRedis && string.IsNullOrWhiteSpace(options.RedisConnection)
            ? ValidateOptionsResult.Fail($"{Section}:RedisConnection is required when {Section}:Mode is '{ClusterSettings.Redis}'.")
            : ValidateOptionsResult.Success;
    }
}

/// <summary>Clustering for silos and clients, chosen by <see cref="ClusterSettings"/>.</summary>
public static class ClusterSetup
{
    /// <summary>
    /// Clustering, silo name and endpoints for a silo (section <c>FalHints:Silo</c>: <c>Name</c>, <c>SiloPort</c>,
    /// <c>GatewayPort</c>, <c>AdvertisedAddress</c>), and mutual TLS when <c>FalHints:Tls</c> is set (<see cref="ClusterTls"/>).
    /// </summary>
    public static ISiloBuilder UseFalHintsClustering(this ISiloBuilder silo, IConfiguration configuration, string siloName)
    {
        var settings = ClusterSettings.From(configuration);
        var endpoints = SiloSettings.From(configuration);
        var (siloPort, gatewayPort) = (endpoints.SiloPort, endpoints.GatewayPort);
        silo.Configure<ClusterOptions>(o => (o.ClusterId, o.ServiceId) = (settings.ClusterId, settings.ServiceId));
        silo.Configure<SiloOptions>(o => o.SiloName = siloName);
        if (ClusterTls.From(configuration) is { } tls)
        {
            silo.UseTls(tls.LoadCertificate(), tls.Configure);
        }

        if (!settings.UsesRedis)
        {
            return silo.UseLocalhostClustering(siloPort, gatewayPort, new IPEndPoint(IPAddress.Loopback, siloPort));
        }

        var redis = ConfigurationOptions.Parse(settings.RedisConnection!);
        silo.UseRedisClustering(o => o.ConfigurationOptions = redis);
        var advertised = endpoints.AdvertisedAddress;
        return string.IsNullOrWhiteSpace(advertised)
            ? silo.ConfigureEndpoints(Dns.GetHostName(), siloPort, gatewayPort, AddressFamily.InterNetwork, listenOnAnyHostAddress: true)
            : silo.ConfigureEndpoints(IPAddress.Parse(advertised), siloPort, gatewayPort, listenOnAnyHostAddress: true);
    }

    /// <summary>
    /// Request state as <see cref="StorageSettings"/> says: SQLite on this node by default (with the requests left
    /// unfinished by a previous run resumed at start), Redis in Redis mode, or memory when asked for.
    /// </summary>
    public static ISiloBuilder AddFalHintsRequestStorage(this ISiloBuilder silo, IConfiguration configuration, string storageName)
    {
        var cluster = ClusterSettings.From(configuration);
        var storage = StorageSettings.From(configuration, cluster);
        switch (storage.Mode)
        {
            case StorageSettings.Memory:
                silo.AddMemoryGrainStorage(storageName);
                silo.Services.AddOptions<MemoryGrainStorageOptions>(storageName).Configure<IServiceProvider>((o, sp) => o.GrainStorageSerializer = RequestSerializer(sp));
                return silo;
            case StorageSettings.Redis:
                // Orleans' Redis storage writes the records (its keys do not name the provider); the index lists the unfinished.
                var redis = ConfigurationOptions.Parse(cluster.RedisConnection!);
                var records = storageName + ".records";
                silo.Services.AddRedisGrainStorage(records, o => o.ConfigurationOptions = redis);
                silo.Services.AddOptions<RedisStorageOptions>(records).Configure<IServiceProvider>((o, sp) => o.GrainStorageSerializer = RequestSerializer(sp));
                var indexOptions = redis.Clone();
                indexOptions.AbortOnConnectFail = false;
                var connection = new Lazy<Task<IConnectionMultiplexer>>(async () => await ConnectionMultiplexer.ConnectAsync(indexOptions));
                silo.Services.AddSingleton(sp => new RedisRequestIndex(
                    sp.GetRequiredKeyedService<IGrainStorage>(records), () => connection.Value, cluster.ServiceId));
                silo.Services.AddGrainStorage(storageName, (sp, _) => sp.GetRequiredService<RedisRequestIndex>());
                silo.Services.AddSingleton<IUnfinishedRequests>(sp => sp.GetRequiredService<RedisRequestIndex>());
                return silo.AddFalHintsRequestRecovery();
            default:
                silo.Services.AddSingleton(sp => ActivatorUtilities.CreateInstance<SqliteGrainStorage>(sp, storage.Path!));
                silo.Services.AddGrainStorage(storageName, (sp, _) => sp.GetRequiredService<SqliteGrainStorage>());
                silo.Services.AddSingleton<IUnfinishedRequests>(sp => sp.GetRequiredService<SqliteGrainStorage>());
                return silo.AddFalHintsRequestRecovery();
        }
    }

    private static RequestStoreSerializer RequestSerializer(IServiceProvider services) =>
        new(services.GetRequiredService<Orleans.Serialization.Serializer>(), services.GetRequiredService<IGrainStorageSerializer>());

    /// <summary>The node's own health checks (<see cref="NodeHealth"/>), for <c>/health</c> and for leaving a membership table that lost it.</summary>
    public static ISiloBuilder AddFalHintsNodeHealth(this ISiloBuilder silo, IConfiguration configuration)
    {
        var cluster = ClusterSettings.From(configuration);
        var storage = StorageSettings.From(configuration, cluster);
        silo.Services.AddSingleton(sp =>
        {
            Func<CancellationToken, Task> probe = storage.Mode switch
            {
                StorageSettings.Redis => NodeHealth.RedisProbe(cluster.RedisConnection!, cluster.HealthCheckInterval * 2),
                StorageSettings.Sqlite => _ => sp.GetRequiredService<SqliteGrainStorage>().IsReachable()
                    ? Task.CompletedTask
                    : throw new InvalidOperationException($"The request store {storage.Path} does not answer."),
                _ => _ => Task.CompletedTask,
            };
            return new NodeHealth(sp.GetRequiredService<IMembershipTable>(), sp.GetRequiredService<ILocalSiloDetails>(), probe,
                storeSharesTable: storage.Mode == StorageSettings.Redis, sp.GetRequiredService<RequestStoreLosses>(), cluster,
                sp.GetRequiredService<IHostApplicationLifetime>(), sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<NodeHealth>>());
        });
        silo.Services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>>(sp => sp.GetRequiredService<NodeHealth>());
        return silo;
    }

    /// <summary>Clustering for a client: the local silo's gateway, or the gateways Redis lists; TLS when <c>FalHints:Tls</c> is set.</summary>
    public static IClientBuilder UseFalHintsClustering(this IClientBuilder client, IConfiguration configuration, TimeSpan? connectTimeout = null)
    {
        var settings = ClusterSettings.From(configuration);
        client.Configure<ClusterOptions>(o => (o.ClusterId, o.ServiceId) = (settings.ClusterId, settings.ServiceId));
        client.UseFalHintsDefaults(connectTimeout);
        if (ClusterTls.From(configuration) is { } tls)
        {
            client.UseTls(tls.LoadCertificate(), tls.Configure);
        }

        if (!settings.UsesRedis)
        {
            return client.UseLocalhostClustering(SiloSettings.From(configuration).GatewayPort);
        }

        // Orleans' default is a minute: a client would wait that long to find the nodes of a cluster that restarted.
        client.Configure<GatewayOptions>(o => o.GatewayListRefreshPeriod = TimeSpan.FromSeconds(5));
        return client.UseRedisClustering(o => o.ConfigurationOptions = ConfigurationOptions.Parse(settings.RedisConnection!));
    }
}
