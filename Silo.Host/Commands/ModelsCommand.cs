using System.CommandLine;
using FalHints.Host.Hosting;
using FalHints.Runner.Models;
using Microsoft.Extensions.Configuration;
using Spectre.Console;

namespace FalHints.Host.Commands;

/// <summary><c>falhints models init|list</c>: fill and inspect the local model store.</summary>
internal static class ModelsCommand
{
    public static Command Create()
    {
        var listStore = CommonOptions.ModelStore();
        var list = new Command("list", "List the models of the store.") { listStore };
        list.SetAction(parse =>
        {
            var store = Open(parse.GetValue(listStore));
            var models = store.List();
            var table = new Table().AddColumns("model", "weights");
            foreach (var model in models)
            {
                table.AddRow(Markup.Escape(model.Id), ByteSize.Format(model.WeightBytes));
            }

            AnsiConsole.MarkupLine($"{models.Count} models in [bold]{Markup.Escape(store.Root)}[/]");
            AnsiConsole.Write(table);
            return 0;
        });

        var initStore = CommonOptions.ModelStore();
        var specs = new Option<string[]>("--model")
        {
            Description = "A model to create as id=size, e.g. demo/big=1GB (repeatable; default: the three demo models).",
            AllowMultipleArgumentsPerToken = false,
        };
        var init = new Command("init", "Write demo models into the store (models already present are kept).") { initStore, specs };
        init.SetAction((parse, cancellationToken) =>
        {
            var requested = parse.GetValue(specs) ?? [];
            IReadOnlyList<DemoModelSpec> models;
            try
            {
                models = requested.Length == 0 ? DemoModels.Defaults : [.. requested.Select(ParseSpec)];
            }
            catch (FormatException ex)
            {
                Console.Error.WriteLine($"error: {ex.Message}");
                return Task.FromResult(1);
            }

            ModelStoreFiller.Fill(Open(parse.GetValue(initStore)), models, cancellationToken);
            return Task.FromResult(0);
        });

        return new Command("models", "Manage the local model store.") { init, list };
    }

    private static ModelStore Open(string? root)
    {
        var configuration = new ConfigurationBuilder();
        HostConfiguration.Apply(configuration, new Dictionary<string, string?> { ["FalHints:ModelStore:Root"] = root });
        return new ModelStore(HostConfiguration.ModelStoreRoot(configuration.Build()));
    }

    private static DemoModelSpec ParseSpec(string text)
    {
        var at = text.LastIndexOf('=');
        if (at <= 0)
        {
            throw new FormatException($"'{text}' is not id=size, e.g. demo/big=1GB.");
        }

        if (!ModelStore.TryValidateId(text[..at], out var error))
        {
            throw new FormatException(error);
        }

        return new DemoModelSpec(text[..at], ByteSize.Parse(text[(at + 1)..]));
    }
}
