using System.Globalization;
using SkiaSharp;

namespace FalHints.Benchmarks.Reporting;

/// <summary>One policy's series in a plot: its latencies (any order) and hit rate.</summary>
public sealed record PlotSeries(string Name, IReadOnlyList<double> LatenciesMs, double HitRate);

/// <summary>
/// A PNG with two panels: the latency CDF of each policy on a logarithmic axis, and each policy's hit rate as a bar,
/// with an optional bound (Belady's) drawn across the bars.
/// </summary>
public static class LatencyPlot
{
    private const int Width = 1400;
    private const int Height = 560;
    private static readonly SKColor[] Palette =
    [
        new(0x1f, 0x77, 0xb4), new(0xd6, 0x27, 0x28), new(0x2c, 0xa0, 0x2c), new(0xff, 0x7f, 0x0e), new(0x94, 0x67, 0xbd),
        new(0x8c, 0x56, 0x4b), new(0xe3, 0x77, 0xc2), new(0x7f, 0x7f, 0x7f), new(0xbc, 0xbd, 0x22), new(0x17, 0xbe, 0xcf),
    ];

    /// <summary>Writes the plot to <paramref name="path"/>, creating its folder.</summary>
    public static void Write(string path, string title, IReadOnlyList<PlotSeries> series, double? hitRateBound = null)
    {
        ArgumentOutOfRangeException.ThrowIfZero(series.Count);
        using var surface = SKSurface.Create(new SKImageInfo(Width, Height, SKColorType.Rgba8888, SKAlphaType.Premul));
        var canvas = surface.Canvas;
        canvas.Clear(SKColors.White);
        using var typeface = LoadTypeface();
        using var font = new SKFont(typeface, 15);
        using var titleFont = new SKFont(typeface, 19);
        using var ink = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        canvas.DrawText(title, 20, 30, SKTextAlign.Left, titleFont, ink);

        var cdf = new SKRect(80, 60, 860, Height - 70);
        var bars = new SKRect(1090, 60, Width - 60, Height - 70);
        DrawCdf(canvas, cdf, series, font, ink);
        DrawHitRates(canvas, bars, series, hitRateBound, font, ink);

        using var image = surface.Snapshot();
        using var png = image.Encode(SKEncodedImageFormat.Png, 100);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        using var file = File.Create(path);
        png.SaveTo(file);
    }

    private static void DrawCdf(SKCanvas canvas, SKRect area, IReadOnlyList<PlotSeries> series, SKFont font, SKPaint ink)
    {
        var all = series.SelectMany(s => s.LatenciesMs).Where(v => v > 0).ToArray();
        var low = Math.Floor(Math.Log10(all.Length == 0 ? 1 : all.Min()));
        var high = Math.Ceiling(Math.Log10(all.Length == 0 ? 10 : all.Max()));
        if (high <= low)
        {
            high = low + 1;
        }

        float X(double ms) => area.Left + (float)((Math.Log10(Math.Max(ms, Math.Pow(10, low))) - low) / (high - low) * area.Width);
        float Y(double fraction) => area.Bottom - (float)(fraction * area.Height);

        using var grid = new SKPaint { Color = new SKColor(0xdd, 0xdd, 0xdd), StrokeWidth = 1 };
        using var axis = new SKPaint { Color = SKColors.Black, StrokeWidth = 1.5f, IsAntialias = true };
        for (var decade = low; decade <= high; decade++)
        {
            var x = X(Math.Pow(10, decade));
            canvas.DrawLine(x, area.Top, x, area.Bottom, grid);
            canvas.DrawText(FormatMs(Math.Pow(10, decade)), x, area.Bottom + 20, SKTextAlign.Center, font, ink);
        }

        for (var tenth = 0; tenth <= 10; tenth += 2)
        {
            var y = Y(tenth / 10.0);
            canvas.DrawLine(area.Left, y, area.Right, y, grid);
            canvas.DrawText(string.Create(CultureInfo.InvariantCulture, $"{tenth * 10}%"), area.Left - 8, y + 5, SKTextAlign.Right, font, ink);
        }

        canvas.DrawRect(area, new SKPaint { Style = SKPaintStyle.Stroke, Color = SKColors.Black, StrokeWidth = 1.5f });
        canvas.DrawText("latency (log scale)", area.MidX, area.Bottom + 45, SKTextAlign.Center, font, ink);
        canvas.Save();
        canvas.RotateDegrees(-90, area.Left - 55, area.MidY);
        canvas.DrawText("requests completed within", area.Left - 55, area.MidY, SKTextAlign.Center, font, ink);
        canvas.Restore();

        for (var i = 0; i < series.Count; i++)
        {
            var sorted = series[i].LatenciesMs.Order().ToArray();
            using var line = new SKPaint { Color = Palette[i % Palette.Length], StrokeWidth = 2.5f, IsAntialias = true, Style = SKPaintStyle.Stroke };
            using var builder = new SKPathBuilder();
            var step = Math.Max(1, sorted.Length / 2000);
            builder.MoveTo(X(sorted.Length == 0 ? 1 : sorted[0]), Y(0));
            for (var k = 0; k < sorted.Length; k += step)
            {
                builder.LineTo(X(sorted[k]), Y((k + 1) / (double)sorted.Length));
            }

            if (sorted.Length > 0)
            {
                builder.LineTo(X(sorted[^1]), Y(1));
            }

            using var path = builder.Detach();
            canvas.DrawPath(path, line);

            // Legend, top left inside the panel.
            var legendY = area.Top + 22 + i * 22;
            canvas.DrawLine(area.Left + 12, legendY - 5, area.Left + 42, legendY - 5, line);
            canvas.DrawText(series[i].Name, area.Left + 50, legendY, SKTextAlign.Left, font, ink);
        }
    }

    private static void DrawHitRates(SKCanvas canvas, SKRect area, IReadOnlyList<PlotSeries> series, double? bound, SKFont font, SKPaint ink)
    {
        canvas.DrawText("hit rate", area.MidX, area.Top - 12, SKTextAlign.Center, font, ink);
        var rowHeight = area.Height / series.Count;
        var barHeight = Math.Min(32, rowHeight * 0.7f);
        for (var i = 0; i < series.Count; i++)
        {
            var top = area.Top + i * rowHeight + (rowHeight - barHeight) / 2;
            var rate = Math.Clamp(series[i].HitRate, 0, 1);
            using var fill = new SKPaint { Color = Palette[i % Palette.Length], IsAntialias = true };
            canvas.DrawRect(new SKRect(area.Left, top, area.Left + (float)(rate * area.Width), top + barHeight), fill);
            canvas.DrawText(series[i].Name, area.Left - 8, top + barHeight / 2 + 5, SKTextAlign.Right, font, ink);
            canvas.DrawText(string.Create(CultureInfo.InvariantCulture, $"{rate:P1}"), area.Left + (float)(rate * area.Width) + 4, top + barHeight / 2 + 5, SKTextAlign.Left, font, ink);
        }

        canvas.DrawLine(area.Left, area.Top, area.Left, area.Bottom, new SKPaint { Color = SKColors.Black, StrokeWidth = 1.5f });
        if (bound is { } b)
        {
            var x = area.Left + (float)(Math.Clamp(b, 0, 1) * area.Width);
            using var dashed = new SKPaint
            {
                Color = SKColors.Black, StrokeWidth = 1.5f, Style = SKPaintStyle.Stroke, PathEffect = SKPathEffect.CreateDash([6, 4], 0),
            };
            canvas.DrawLine(x, area.Top, x, area.Bottom, dashed);
            canvas.DrawText(string.Create(CultureInfo.InvariantCulture, $"bound {b:P1}"), x, area.Bottom + 20, SKTextAlign.Center, font, ink);
        }
    }

    private static string FormatMs(double ms) => ms >= 1000
        ? string.Create(CultureInfo.InvariantCulture, $"{ms / 1000:0.###} s")
        : string.Create(CultureInfo.InvariantCulture, $"{ms:0.###} ms");

    /// <summary>A sans-serif face from the system's fonts where there is one (the bundled Skia has no font manager).</summary>
    private static SKTypeface LoadTypeface()
    {
        string[] candidates =
        [
            "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
            "/usr/share/fonts/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
        ];
        return candidates.Where(File.Exists).Select(f => SKTypeface.FromFile(f)).FirstOrDefault(t => t is not null) ?? SKTypeface.Default;
    }
}
