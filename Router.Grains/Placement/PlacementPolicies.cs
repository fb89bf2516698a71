namespace FalHints.Router.Placement;

/// <summary>What a policy factory may use: randomness, seeded per router so runs can be repeated.</summary>
public sealed record PlacementPolicyServices(IRandomSource Random);

/// <summary>A placement policy by name: how to make a new instance for one app's router (policies keep per-app state).</summary>
public sealed record PlacementPolicyRegistration(string Name, Func<PlacementPolicyServices, IPlacementPolicy> Create);

/// <summary>The placement policies a router can be configured with, by name.</summary>
public sealed class PlacementPolicyCatalog
{
    private readonly Dictionary<string, PlacementPolicyRegistration> _byName = new(StringComparer.Ordinal);

    /// <summary>A catalog of <paramref name="registrations"/>; a later registration of a name replaces an earlier one.</summary>
    public PlacementPolicyCatalog(IEnumerable<PlacementPolicyRegistration> registrations)
    {
        var names = new List<string>();
        foreach (var registration in registrations)
        {
            if (!_byName.ContainsKey(registration.Name))
            {
                names.Add(registration.Name);
            }

            _byName[registration.Name] = registration;
        }

        Names = names;
    }

    /// <summary>The built-in policies alone.</summary>
    public static PlacementPolicyCatalog BuiltIn { get; } = new(PlacementPolicies.BuiltIn);

    /// <summary>Every registered name, in registration order.</summary>
    public IReadOnlyList<string> Names { get; }

    /// <summary>True when a policy of that name is registered.</summary>
    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <summary>A new instance of the named policy.</summary>
    /// <exception cref="ArgumentException">No policy has that name.</exception>
    public IPlacementPolicy Create(string name, IRandomSource random) =>
        _byName.TryGetValue(name, out var registration)
            ? registration.Create(new PlacementPolicyServices(random))
            : throw new ArgumentException($"Unknown placement policy '{name}'; known: {string.Join(", ", Names)}.", nameof(name));
}

/// <summary>The built-in placement policies, by the names configuration uses (<c>FalHints:Router:Policy</c>).</summary>
public static class PlacementPolicies
{
    /// <summary>FalHints' default, never waits while a runner is free: <see cref="HintAffinityPolicy"/>.</summary>
    public const string HintAffinity = nameof(HintAffinity);

    /// <summary>FalHints' opt-in policy that waits for a busy holder when that beats a load: <see cref="WaitForHolderPolicy"/>.</summary>
    public const string WaitForHolder = nameof(WaitForHolder);

    /// <summary><see cref="RoundRobinPolicy"/>: fal without hints.</summary>
    public const string RoundRobin = nameof(RoundRobin);

    /// <summary><see cref="RandomPolicy"/>.</summary>
    public const string Random = nameof(Random);

    /// <summary><see cref="LeastLoadedPolicy"/>.</summary>
    public const string LeastLoaded = nameof(LeastLoaded);

    /// <summary><see cref="FalDocumentedPolicy"/>: fal's routing hints as documented.</summary>
    public const string FalDocumented = nameof(FalDocumented);

    /// <summary><see cref="RayServePolicy"/>: Ray Serve's multiplexed routing from 2.44.</summary>
    public const string RayServe = nameof(RayServe);

    /// <summary><see cref="RayServe243Policy"/>: Ray Serve's multiplexed routing up to 2.43.</summary>
    public const string RayServe243 = nameof(RayServe243);

    /// <summary><see cref="ModelMeshPolicy"/>: KServe ModelMesh.</summary>
    public const string ModelMesh = nameof(ModelMesh);

    /// <summary><see cref="HaproxyConsistentHashPolicy"/>: consistent hashing with bounded loads as HAProxy does it.</summary>
    public const string ConsistentHashHaproxy = nameof(ConsistentHashHaproxy);

    /// <summary><see cref="EnvoyConsistentHashPolicy"/>: consistent hashing with bounded loads as Envoy does it.</summary>
    public const string ConsistentHashEnvoy = nameof(ConsistentHashEnvoy);

    /// <summary>The built-in policies; adding one is a class and a line here (or a registration in DI).</summary>
    public static IReadOnlyList<PlacementPolicyRegistration> BuiltIn { get; } =
    [
        new(HintAffinity, _ => new HintAffinityPolicy()),
        new(WaitForHolder, _ => new WaitForHolderPolicy()),
        new(RoundRobin, _ => new RoundRobinPolicy()),
        new(Random, s => new RandomPolicy(s.Random)),
        new(LeastLoaded, _ => new LeastLoadedPolicy()),
        new(FalDocumented, s => new FalDocumentedPolicy(s.Random)),
        new(RayServe, s => new RayServePolicy(s.Random)),
        new(RayServe243, s => new RayServe243Policy(s.Random)),
        new(ModelMesh, s => new ModelMeshPolicy(s.Random)),
        new(ConsistentHashHaproxy, _ => new HaproxyConsistentHashPolicy()),
        new(ConsistentHashEnvoy, s => new EnvoyConsistentHashPolicy(s.Random)),
    ];

    /// <summary>Every built-in name.</summary>
    public static IReadOnlyList<string> Names => PlacementPolicyCatalog.BuiltIn.Names;

    /// <summary>A new instance of the named built-in policy.</summary>
    /// <exception cref="ArgumentException">No built-in policy has that name.</exception>
    public static IPlacementPolicy Create(string name, IRandomSource random) => PlacementPolicyCatalog.BuiltIn.Create(name, random);
}
