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

    /// <summary>The modes, as written in the section.</summary>
    internal static readonly string[] Modes = [Auto, Sqlite, Redis, Memory];

    /// <summary>
    /// Reads and checks the section against the clustering (before the host is built: it chooses the store), then
    /// resolves <see cref="Auto"/> and the default path; a bad setting is an error that names it.
    /// </summary>
    public static StorageSettings From(IConfiguration configuration, ClusterSettings cluster)
    {
        var settings = configuration.GetSection(SectionName).Get<StorageSettings>() ?? new StorageSettings();
        var result = new StorageSettingsValidator(cluster).Validate(null, settings);
        if (result.Failed)
        {
            throw new OptionsValidationException(SectionName, typeof(StorageSettings), result.Failures);
        }

        var mode = Modes.First(m => string.Equals(m, settings.Mode, StringComparison.OrdinalIgnoreCase));
        settings.Mode = mode == Auto ? (cluster.UsesRedis ? Redis : Sqlite) : mode;
        settings.Path = string.IsNullOrWhiteSpace(settings.Path)
            ? System.IO.Path.Combine(FalHintsSilo.DefaultDataDirectory(), DefaultFileName)
            : System.IO.Path.GetFullPath(settings.Path);
        return settings;
    }
}

/// <summary>Checks <see cref="StorageSettings"/> against the clustering it is used with, naming the setting at fault.</summary>
internal sealed class StorageSettingsValidator(ClusterSettings cluster) : IValidateOptions<StorageSettings>
{
    private const string Section = StorageSettings.SectionName;

    public ValidateOptionsResult Validate(string? name, StorageSettings options)
    {
        var mode = StorageSettings.Modes.FirstOrDefault(m => string.Equals(m, options.Mode, StringComparison.OrdinalIgnoreCase));
        if (mode is null)
        {
            return ValidateOptionsResult.Fail($"{Section}:Mode is '{options.Mode}'; use {string.Join(", ", StorageSettings.Modes.Select(m => $"'{m}'"))}.");
        }

        if (mode == StorageSettings.Redis && string.IsNullOrWhiteSpace(cluster.RedisConnection))
        {
            return ValidateOptionsResult.Fail($"{Section}:Mode '{StorageSettings.Redis}' needs {ClusterSettings.SectionName}:RedisConnection.");
        }

        // Request grains live on any node: a file on one node would leave the others unable to read them.
        return mode == StorageSettings.Sqlite && cluster.UsesRedis
            ? ValidateOptionsResult.Fail($"{Section}:Mode '{StorageSettings.Sqlite}' keeps requests on one node; a cluster in {ClusterSettings.SectionName}:Mode '{ClusterSettings.Redis}' needs '{StorageSettings.Redis}' (or '{StorageSettings.Memory}', which loses requests).")
            : ValidateOptionsResult.Success;
    }
}
