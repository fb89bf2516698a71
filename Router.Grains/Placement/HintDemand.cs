namespace FalHints.Router.Placement;

/// <summary>
/// Recent demand per hint, counted from the requests a policy places and halved every <see cref="HalfLife"/>
/// placements, so it follows popularity as it drifts. A policy keeps one per app; it is plain state, no clock.
/// </summary>
public sealed class HintDemand
{
    /// <summary>Placements after which every count is halved.</summary>
    public const int HalfLife = 1_000;

    /// <summary>How many of the most demanded hints <see cref="Hottest"/> lists.</summary>
    public const int HottestCount = 16;

    // Below this a count is forgotten, so hints nobody asks for any more do not pile up.
    private const double Forgotten = 1.0 / 64;

    private readonly Dictionary<string, double> _counts = new(StringComparer.Ordinal);
    private List<string> _hottest = [];
    private long _placed;
    private bool _hottestStale;

    /// <summary>Hinted requests counted so far.</summary>
    public long Placed => _placed;

    /// <summary>The sum of every hint's count.</summary>
    public double Total { get; private set; }

    /// <summary>The most demanded hints, most first (at most <see cref="HottestCount"/>; refreshed every 64 placements).</summary>
    public IReadOnlyList<string> Hottest
    {
        get
        {
            if (_hottestStale)
            {
                _hottestStale = false;
                _hottest = [.. _counts.OrderByDescending(e => e.Value).ThenBy(e => e.Key, StringComparer.Ordinal).Take(HottestCount).Select(e => e.Key)];
            }

            return _hottest;
        }
    }

    /// <summary>Counts one placed request for <paramref name="hint"/> (null: a request without a hint, not counted).</summary>
    public void Record(string? hint)
    {
        if (hint is null)
        {
            return;
        }

        _counts[hint] = _counts.GetValueOrDefault(hint) + 1;
        Total++;
        if (++_placed % HalfLife == 0)
        {
            Total = 0;
            foreach (var key in _counts.Keys.ToList())
            {
                var halved = _counts[key] / 2;
                if (halved < Forgotten)
                {
                    _counts.Remove(key);
                }
                else
                {
                    _counts[key] = halved;
                    Total += halved;
                }
            }
        }

        _hottestStale |= _placed % 64 == 1 || _hottest.Count < HottestCount && !_hottest.Contains(hint, StringComparer.Ordinal);
    }

    /// <summary>The recent demand for <paramref name="hint"/> (0: none).</summary>
    public double Of(string hint) => _counts.GetValueOrDefault(hint);
}
