using System.Collections.Immutable;
using FalHints.Client.Contracts;

namespace FalHints.Router.Hints;

/// <summary>
/// What a runner last said of itself for one app, as it said it: replaced whole by each newer event, never edited by
/// the router (what the router infers or owns lives beside it, in <see cref="RunnerState"/>).
/// </summary>
/// <param name="RunnerId">The runner, <c>{silo}/{device}</c>.</param>
/// <param name="Silo">The silo it is pinned to.</param>
/// <param name="Hints">The app's hints on the runner, in the app's order.</param>
/// <param name="Loading">What the runner is loading now.</param>
/// <param name="Warm">What the runner keeps in host memory (its host tier): not hints, but cheap to load.</param>
/// <param name="InFlight">Requests the runner said it was running.</param>
/// <param name="Capacity">Requests it takes at once.</param>
/// <param name="Draining">True once the runner announced it is stopping.</param>
/// <param name="Sequence">The event's sequence (<see cref="long.MinValue"/>: the runner has not reported yet).</param>
/// <param name="Cache">The runner's pipeline cache.</param>
/// <param name="MeanInferenceMs">Mean time of the app's requests on the runner, in milliseconds.</param>
public sealed record RunnerReport(
    string RunnerId,
    string Silo,
    ImmutableArray<string> Hints,
    ImmutableArray<string> Loading,
    ImmutableArray<string> Warm,
    int InFlight,
    int Capacity,
    bool Draining,
    long Sequence,
    CacheUsage Cache,
    double MeanInferenceMs)
{
    /// <summary>The report in <paramref name="hints"/>.</summary>
    public static RunnerReport From(HintsEvent hints) => new(
        hints.RunnerId,
        hints.Silo,
        hints.Hints.IsDefault ? [] : hints.Hints,
        hints.Loading.IsDefault ? [] : hints.Loading,
        hints.Warm.IsDefault ? [] : hints.Warm,
        hints.InFlight,
        hints.Capacity,
        hints.Kind == HintsEventKind.Draining,
        hints.Sequence,
        hints.Cache ?? CacheUsage.None,
        hints.Routing?.MeanInferenceMs ?? 0);

    /// <summary>A runner known to the router before it reported (it learned of a request running there): nothing held, no capacity.</summary>
    public static RunnerReport Unheard(string runnerId)
    {
        var slash = runnerId.LastIndexOf('/');
        return new(runnerId, slash > 0 ? runnerId[..slash] : runnerId, [], [], [], 0, 0, false, long.MinValue, CacheUsage.None, 0);
    }
}
