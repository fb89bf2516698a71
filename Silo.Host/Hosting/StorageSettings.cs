using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace FalHints.Host.Hosting;

/// <summary>Where request state is kept (section <c>FalHints:Storage</c>).</summary>
public sealed class StorageSettings
{
    /// <summary>The configuration section.</summary>
    public const string SectionName = "FalHints:Storage";

    /// <summary>The store that fits the clustering: Redis in Redis mode, SQLite otherwise (the default).</summary>
    public const string Auto = "auto";

    /// <summary>One SQLite file on this node: requests survive a crash or restart of the node.</summary>
    public const string Sqlite = "sqlite";

    /// <summary>The cluster's Redis: requests survive any node.</summary>
    public const string Redis = "redis";

    /// <summary>Memory only: every queued or running request, and every result, is lost when the node stops.</summary>
    public const string Memory = "memory";

    /// <summary>The file SQLite mode uses when <see cref="Path"/> is not set, in the data directory.</summary>
    public const string DefaultFileName = "requests.db";

    /// <summary><see cref="Auto"/>, <see cref="Sqlite"/>, <see cref="Redis"/> or <see cref="Memory"/>.</summary>
    public string Mode { get; set; } = Auto;

    /// <summary>The SQLite file; default <c>requests.db</c> in the data directory (see <see cref="FalHintsSilo.DefaultDataDirectory"/>).</summary>
    public string? Path { get; set; }

    /// <summary>Reads and checks the section against the clustering; a bad setting is an error that names it.</summary>
    public static StorageSettings From(IConfiguration configuration, ClusterSettings cluster)
    {
        var settings = configuration.GetSection(SectionName).Get<StorageSettings>() ?? new StorageSettings();
        string[] modes = [Auto, Sqlite, Redis, Memory];
        var mode = modes.FirstOrDefault(m => string.Equals(m, settings.Mode, StringComparison.OrdinalIgnoreCase));
        if (mode is null)
        {
            throw Invalid($"{SectionName}:Mode is '{settings.Mode}'; use {string.Join(", ", modes.Select(m => $"'{m}'"))}.");
        }

        settings.Mode = mode == Auto ? (cluster.UsesRedis ? Redis : Sqlite) : mode;
        if (settings.Mode == Redis && string.IsNullOrWhiteSpace(cluster.RedisConnection))
        {
            throw Invalid($"{SectionName}:Mode '{Redis}' needs {ClusterSettings.SectionName}:RedisConnection.");
        }

        if (settings.Mode == Sqlite && cluster.UsesRedis)
        {
            // Request grains live on any node: a file on one node would leave the others unable to read them.
            throw Invalid($"{SectionName}:Mode '{Sqlite}' keeps requests on one node; a cluster in {ClusterSettings.SectionName}:Mode '{ClusterSettings.Redis}' needs '{Redis}' (or '{Memory}', which loses requests).");
        }

        settings.Path = string.IsNullOrWhiteSpace(settings.Path)
            ? System.IO.Path.Combine(FalHintsSilo.DefaultDataDirectory(), DefaultFileName)
            : System.IO.Path.GetFullPath(settings.Path);
        return settings;
    }

    private static OptionsValidationException Invalid(string message) => new(SectionName, typeof(StorageSettings), [message]);
}
