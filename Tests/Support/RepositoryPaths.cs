namespace FalHints.Tests.Support;

/// <summary>Files of the repository the tests run from.</summary>
public static class RepositoryPaths
{
    /// <summary>The repository root: the first folder above the test binaries that holds FalHints.sln.</summary>
    public static string Root { get; } = FindRoot();

    private static string FindRoot()
    {
        for (var folder = new DirectoryInfo(AppContext.BaseDirectory); folder is not null; folder = folder.Parent)
        {
            if (File.Exists(Path.Combine(folder.FullName, "FalHints.sln")))
            {
                return folder.FullName;
            }
        }

        throw new DirectoryNotFoundException($"No FalHints.sln above {AppContext.BaseDirectory}.");
    }
}
