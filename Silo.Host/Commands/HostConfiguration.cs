using FalHints.Host.Hosting;
using Microsoft.Extensions.Configuration;

namespace FalHints.Host.Commands;

/// <summary>Configuration from appsettings.json beside the program, environment variables (such as FalHints__Runners__CpuRunners) and command-line overrides, in that order of precedence from lowest.</summary>
internal static class HostConfiguration
{
    public static void Apply(IConfigurationBuilder configuration, IReadOnlyDictionary<string, string?> overrides)
    {
        configuration.SetBasePath(AppContext.BaseDirectory)
            .AddJsonFile("appsettings.json", optional: true)
            .AddEnvironmentVariables()
            .AddInMemoryCollection(overrides.Where(o => o.Value is not null));
    }

    public static string ModelStoreRoot(IConfiguration configuration)
    {
        var root = configuration["FalHints:ModelStore:Root"];
        return string.IsNullOrWhiteSpace(root) ? FalHintsSilo.DefaultModelStoreRoot() : root;
    }
}
