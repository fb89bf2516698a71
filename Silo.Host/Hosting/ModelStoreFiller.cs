using FalHints.Runner.Models;
using Spectre.Console;

namespace FalHints.Host.Hosting;

/// <summary>Fills the model store with demo models, showing progress (a bar on a terminal, lines otherwise).</summary>
internal static class ModelStoreFiller
{
    public static void Fill(ModelStore store, IReadOnlyList<DemoModelSpec> specs, CancellationToken cancellationToken)
    {
        var total = specs.Sum(s => s.Bytes);
        AnsiConsole.MarkupLine($"Model store [bold]{Markup.Escape(store.Root)}[/]: {specs.Count} demo models ({ByteSize.Format(total)}).");
        if (!AnsiConsole.Profile.Capabilities.Interactive)
        {
            DemoModels.Fill(store, specs, new InlineProgress<DemoModelProgress>(p =>
            {
                if (p.Stage != DemoModelStage.Written)
                {
                    var state = p.Stage == DemoModelStage.Writing ? "writing" : "already present";
                    Console.WriteLine($"  [{p.Index + 1}/{p.Count}] {p.ModelId} ({ByteSize.Format(specs[p.Index].Bytes)}): {state}");
                }
            }), cancellationToken);
            return;
        }

        AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new SpinnerColumn())
            .Start(context =>
            {
                var task = context.AddTask("demo models", maxValue: total);
                DemoModels.Fill(store, specs, new InlineProgress<DemoModelProgress>(p =>
                {
                    task.Value = p.BytesDone;
                    task.Description = $"{Markup.Escape(p.ModelId)} [[{p.Index + 1}/{p.Count}]]";
                }), cancellationToken);
            });
    }

    /// <summary>Reports on the calling thread, in order (unlike <see cref="Progress{T}"/>).</summary>
    private sealed class InlineProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
