using System.Diagnostics;
using System.Globalization;

namespace FalHints.Benchmarks.Reporting;

/// <summary>
/// Progress of a long run on standard error: a line rewritten in place at most four times a second on a terminal,
/// else one line per tenth of the work, so logs stay short. Standard output keeps only the figures.
/// </summary>
public sealed class ProgressLine : IProgress<long>, IDisposable
{
    private readonly string _label;
    private readonly long _total;
    private readonly bool _interactive = !Console.IsErrorRedirected;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly Lock _gate = new();
    private long _lastDrawTicks = long.MinValue;
    private int _lastTenth = -1;
    private bool _drawn;

    /// <summary>Starts a progress line for <paramref name="total"/> units of work.</summary>
    public ProgressLine(string label, long total)
    {
        _label = label;
        _total = Math.Max(1, total);
    }

    /// <summary>Reports <paramref name="done"/> units done, with an optional detail (hit rate so far, ...).</summary>
    public void Report(long done, string? detail = null)
    {
        lock (_gate)
        {
            var fraction = Math.Clamp(done / (double)_total, 0, 1);
            var tenth = (int)(fraction * 10);
            var now = _clock.ElapsedTicks;
            if (_interactive ? now - _lastDrawTicks < Stopwatch.Frequency / 4 && done < _total : tenth == _lastTenth)
            {
                return;
            }

            _lastDrawTicks = now;
            _lastTenth = tenth;
            var elapsed = _clock.Elapsed.TotalSeconds;
            var eta = fraction > 0 ? elapsed / fraction - elapsed : double.NaN;
            var line = string.Create(CultureInfo.InvariantCulture,
                $"  {_label}: {fraction:P0} ({done:N0} of {_total:N0}), {elapsed:0}s elapsed{(double.IsNaN(eta) ? "" : $", ~{eta:0}s left")}{(detail is null ? "" : ", " + detail)}");
            if (_interactive)
            {
                Console.Error.Write("\r" + line.PadRight(Math.Min(Console.BufferWidth > 0 ? Console.BufferWidth - 1 : 120, 160)));
                _drawn = true;
            }
            else
            {
                Console.Error.WriteLine(line);
            }
        }
    }

    /// <inheritdoc />
    void IProgress<long>.Report(long value) => Report(value);

    /// <summary>Ends the line.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_interactive && _drawn)
            {
                Console.Error.WriteLine();
            }
        }
    }
}
