namespace FalHints.Host.Commands;

/// <summary>Zipf-distributed ranks in [0, n): rank k with weight 1/(k+1)^s, drawn by inverse CDF (one uniform draw each).</summary>
internal sealed class Zipf
{
    private readonly double[] _cumulative;
    private readonly Random _random;

    /// <summary>Ranks over <paramref name="n"/> items with exponent <paramref name="exponent"/> (0: uniform), drawn from <paramref name="random"/>.</summary>
    public Zipf(int n, double exponent, Random random)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(n, 1);
        _random = random;
        _cumulative = new double[n];
        var sum = 0.0;
        for (var k = 0; k < n; k++)
        {
            sum += 1.0 / Math.Pow(k + 1, exponent);
            _cumulative[k] = sum;
        }

        for (var k = 0; k < n; k++)
        {
            _cumulative[k] /= sum;
        }
    }

    /// <summary>The next rank.</summary>
    public int Next()
    {
        var index = Array.BinarySearch(_cumulative, _random.NextDouble());
        return Math.Min(index < 0 ? ~index : index, _cumulative.Length - 1);
    }
}
