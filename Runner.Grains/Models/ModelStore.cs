using System.Diagnostics.CodeAnalysis;
using System.Text.RegularExpressions;
using FalHints.Client.Contracts;

namespace FalHints.Runner.Models;

/// <summary>A model in the store: its id and the folder holding <c>config.json</c> and the weights.</summary>
public sealed record StoredModel(string Id, string Directory, long WeightBytes)
{
    /// <summary>The model's configuration file.</summary>
    public string ConfigPath => Path.Combine(Directory, ModelStore.ConfigFileName);

    /// <summary>The model's safetensors weights.</summary>
    public string WeightsPath => Path.Combine(Directory, ModelStore.WeightsFileName);
}

/// <summary>
/// The local model store: model ids <c>owner/name</c> resolve to <c>{root}/owner/name/</c>. Ids that could
/// name anything outside the store are refused before the file system is touched; then every segment of the model's
/// path, and of its files' paths, is resolved through its links, and what they lead to must lie inside the store too
/// (links within it, as in Hugging Face cache layouts, are fine; sizes are those of the files the links lead to).
/// </summary>
public sealed partial class ModelStore
{
    /// <summary>The configuration file every model folder holds.</summary>
    public const string ConfigFileName = "config.json";

    /// <summary>The weights file every model folder holds.</summary>
    public const string WeightsFileName = "model.safetensors";

    /// <summary>The longest model id accepted.</summary>
    public const int MaxIdLength = 200;

    /// <summary>Opens the store at <paramref name="root"/> (created on demand by writers, not here).</summary>
    public ModelStore(string root)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(root);
        Root = Path.GetFullPath(root);
    }

    /// <summary>The store's absolute root folder.</summary>
    public string Root { get; }

    /// <summary>Checks the shape of a model id without touching the disk.</summary>
    public static bool TryValidateId([NotNullWhen(true)] string? id, [NotNullWhen(false)] out string? error)
    {
        error = id switch
        {
            null or "" => "The model id is empty; expected 'owner/name'.",
            { Length: > MaxIdLength } => $"The model id is {id.Length} characters long; at most {MaxIdLength} are allowed.",
            _ when id.Any(char.IsControl) => "The model id contains control characters.",
            _ when id.Contains("://", StringComparison.Ordinal) || id.Contains(':', StringComparison.Ordinal) => $"The model id '{id}' looks like a URL or a drive path; expected 'owner/name' of the local model store.",
            _ when id.StartsWith('/') || id.StartsWith('\\') || id.StartsWith('~') => $"The model id '{id}' is an absolute path; expected 'owner/name' of the local model store.",
            _ when id.Contains("..", StringComparison.Ordinal) => $"The model id '{id}' contains '..'; model ids cannot leave the model store.",
            _ when !IdPattern().IsMatch(id) => $"The model id '{id}' is not of the form 'owner/name' (letters, digits, '.', '_' or '-' in each part).",
            _ => null,
        };
        return error is null;
    }

    /// <summary>Resolves a model id to its folder.</summary>
    /// <exception cref="ModelStoreException">The id is refused (<c>invalid_input</c>) or names no model (<c>model_not_found</c>).</exception>
    public StoredModel Resolve(string? id)
    {
        if (!TryValidateId(id, out var error))
        {
            throw new ModelStoreException(ErrorCodes.InvalidInput, error);
        }

        var directory = Path.GetFullPath(Path.Combine(Root, id));
        EnsureInside(id, directory, Root);
        var realRoot = RealPath(Root);
        EnsureInside(id, RealPath(directory), realRoot);
        var config = RealPath(Path.Combine(directory, ConfigFileName));
        var weights = RealPath(Path.Combine(directory, WeightsFileName));
        if (!Directory.Exists(directory) || !File.Exists(config) || !File.Exists(weights))
        {
            throw new ModelStoreException(ErrorCodes.ModelNotFound, $"Model '{id}' not found in the model store (see GET /models or 'falhints models list' for the models it has).");
        }

        EnsureInside(id, config, realRoot);
        EnsureInside(id, weights, realRoot);
        return new StoredModel(id, directory, new FileInfo(weights).Length);
    }

    /// <summary>Every complete model in the store, ordered by id.</summary>
    public IReadOnlyList<StoredModel> List()
    {
        if (!Directory.Exists(Root))
        {
            return [];
        }

        return Directory.EnumerateDirectories(Root)
            .SelectMany(owner => Directory.EnumerateDirectories(owner)
                .Select(name => $"{Path.GetFileName(owner)}/{Path.GetFileName(name)}"))
            .Where(id => TryValidateId(id, out _))
            .Select(id => TryResolve(id))
            .OfType<StoredModel>()
            .OrderBy(model => model.Id, StringComparer.Ordinal)
            .ToList();
    }

    private StoredModel? TryResolve(string id)
    {
        try
        {
            return Resolve(id);
        }
        catch (ModelStoreException)
        {
            return null;
        }
    }

    private static void EnsureInside(string id, string path, string root)
    {
        var prefix = root.EndsWith(Path.DirectorySeparatorChar) ? root : root + Path.DirectorySeparatorChar;
        if (!path.StartsWith(prefix, StringComparison.Ordinal))
        {
            throw new ModelStoreException(ErrorCodes.InvalidInput, $"The model id '{id}' resolves outside the model store.");
        }
    }

    /// <summary>
    /// The path with every link along it replaced by what it leads to, segment by segment from the file system's root
    /// (what <c>realpath</c> gives; segments that do not exist are kept as they are).
    /// </summary>
    private static string RealPath(string path, int depth = 0)
    {
        // As the kernel does (ELOOP): a chain this long is a loop.
        const int MaxLinks = 40;
        var full = Path.GetFullPath(path);
        var current = Path.GetPathRoot(full)!;
        var segments = full[current.Length..].Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries);
        for (var i = 0; i < segments.Length; i++)
        {
            var next = Path.Combine(current, segments[i]);
            if (new FileInfo(next).LinkTarget is { } target)
            {
                if (depth >= MaxLinks)
                {
                    throw new ModelStoreException(ErrorCodes.InvalidInput, $"The path {path} goes through more than {MaxLinks} links.");
                }

                return RealPath(Path.Combine([Path.GetFullPath(target, current), .. segments[(i + 1)..]]), depth + 1);
            }

            current = next;
        }

        return current;
    }

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$", RegexOptions.CultureInvariant)]
    private static partial Regex IdPattern();
}
