namespace FalHints.Router.Placement;

/// <summary>The placement policies, by the names configuration uses (<c>FalHints:Router:Policy</c>).</summary>
public static class PlacementPolicies
{
    /// <summary>FalHints' default: <see cref="HintAffinityPolicy"/>.</summary>
    public const string HintAffinity = nameof(HintAffinity);

    /// <summary><see cref="HintAffinityPolicy"/> that waits for a busy holder when that beats a load (opt-in).</summary>
    public const string HintAffinityCostAware = nameof(HintAffinityCostAware);

    /// <summary><see cref="RoundRobinPolicy"/>: fal without hints.</summary>
    public const string RoundRobin = nameof(RoundRobin);

    /// <summary><see cref="RandomPolicy"/>.</summary>
    public const string Random = nameof(Random);

    /// <summary><see cref="LeastLoadedPolicy"/>.</summary>
    public const string LeastLoaded = nameof(LeastLoaded);

    /// <summary><see cref="FalDocumentedPolicy"/>: fal's routing hints as documented.</summary>
    public const string FalDocumented = nameof(FalDocumented);

    /// <summary><see cref="RayServePolicy"/>: Ray Serve's model multiplexing.</summary>
    public const string RayServe = nameof(RayServe);

    /// <summary><see cref="ModelMeshPolicy"/>: KServe ModelMesh's placement.</summary>
    public const string ModelMesh = nameof(ModelMesh);

    /// <summary><see cref="ConsistentHashPolicy"/>: consistent hashing with bounded loads.</summary>
    public const string ConsistentHash = nameof(ConsistentHash);

    /// <summary>Every name <see cref="Create"/> accepts.</summary>
    public static IReadOnlyList<string> Names { get; } =
        [HintAffinity, HintAffinityCostAware, RoundRobin, Random, LeastLoaded, ConsistentHash, FalDocumented, RayServe, ModelMesh];

    /// <summary>A new instance of the named policy (policies may keep state, such as a round-robin cursor).</summary>
    /// <exception cref="ArgumentException">No policy has that name.</exception>
    public static IPlacementPolicy Create(string name, IRandomSource random) => name switch
    {
        HintAffinity => new HintAffinityPolicy(),
        HintAffinityCostAware => new HintAffinityPolicy(costAware: true),
        RoundRobin => new RoundRobinPolicy(),
        Random => new RandomPolicy(random),
        LeastLoaded => new LeastLoadedPolicy(),
        ConsistentHash => new ConsistentHashPolicy(),
        FalDocumented => new FalDocumentedPolicy(random),
        RayServe => new RayServePolicy(random),
        ModelMesh => new ModelMeshPolicy(),
        _ => throw new ArgumentException($"Unknown placement policy '{name}'; known: {string.Join(", ", Names)}.", nameof(name)),
    };
}
