using FalHints.Router.Placement;

namespace FalHints.Tests.Support;

/// <summary>
/// Places as the default does and asks once for a background load of <paramref name="hint"/> on
/// <paramref name="runner"/> (default: the first free runner in id order); with <paramref name="holdBack"/> it starts
/// nothing until that load is booked.
/// </summary>
public sealed class PrewarmOnce(string hint, string? runner = null, bool holdBack = false) : IPlacementPolicy
{
    private readonly HintAffinityPolicy _placement = new();
    private bool _asked;

    public string Name => "prewarm-once";

    /// <summary>How often the dispatcher asked for a prewarm.</summary>
    public int Asked { get; private set; }

    public PlacementChoice? Next(PlacementContext context) => holdBack && !_asked ? null : _placement.Next(context);

    public PrewarmChoice? Prewarm(PlacementContext context)
    {
        Asked++;
        if (_asked)
        {
            return null;
        }

        _asked = true;
        return new PrewarmChoice(hint, runner ?? context.Runners.Free.Select(r => r.RunnerId).Min(StringComparer.Ordinal)!);
    }
}
