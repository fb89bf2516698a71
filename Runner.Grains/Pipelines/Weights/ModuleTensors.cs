using System.Reflection;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace FalHints.Runner.Pipelines.Weights;

/// <summary>
/// The tensors of a TorchSharp module as its state dict names them, and the means to give it new ones. A module built
/// on the meta device has shapes and types but no memory; <see cref="Replace"/> gives each parameter and buffer fresh
/// storage, the way TorchSharp's own <c>Module.to</c> swaps them (a settable property of that name, else the field
/// that holds it), so a loader can fill them without the module's constructor drawing initial weights first.
/// </summary>
internal static class ModuleTensors
{
    private static readonly MethodInfo RegisterParameter = typeof(nn.Module).GetMethod(
        "ConditionallyRegisterParameter", BindingFlags.NonPublic | BindingFlags.Instance, [typeof(string), typeof(Parameter)])
        ?? throw new MissingMethodException(nameof(nn.Module), "ConditionallyRegisterParameter");

    private static readonly MethodInfo RegisterBuffer = typeof(nn.Module).GetMethod(
        "ConditionallyRegisterBuffer", BindingFlags.NonPublic | BindingFlags.Instance, [typeof(string), typeof(Tensor), typeof(bool)])
        ?? throw new MissingMethodException(nameof(nn.Module), "ConditionallyRegisterBuffer");

    /// <summary>What the module's weights file must hold: every state-dict entry, with its type and shape.</summary>
    public static IReadOnlyList<ExpectedTensor> Expected(nn.Module module) =>
        [.. module.state_dict().Select(entry => new ExpectedTensor(entry.Key, entry.Value.dtype, entry.Value.shape))];

    /// <summary>
    /// Replaces every parameter and persistent buffer of <paramref name="root"/> and its submodules with what
    /// <paramref name="create"/> returns for its state-dict name and current tensor (which is disposed). Parameters
    /// come back without gradients: pipelines only run inference.
    /// </summary>
    /// <exception cref="InvalidOperationException">A module holds a tensor that cannot be replaced or restored.</exception>
    public static void Replace(nn.Module root, Func<string, Tensor, Tensor> create)
    {
        foreach (var (prefix, module) in new[] { (string.Empty, root) }.Concat(root.named_modules()))
        {
            foreach (var (name, parameter) in module.named_parameters(recurse: false).ToList())
            {
                var full = Join(prefix, name);
                var replacement = new Parameter(create(full, parameter).DetachFromDisposeScope(), requires_grad: false);
                Set(module, name, parameter, replacement, () => RegisterParameter.Invoke(module, [name, replacement]));
                if (!module.named_parameters(recurse: false).Any(p => p.name == name && p.parameter.Handle == replacement.Handle))
                {
                    throw new InvalidOperationException($"{module.GetType().Name} does not let its parameter '{full}' be replaced.");
                }
            }

            var persistent = module.named_buffers(recurse: false, include_nonpersistent: false).Select(b => b.name).ToHashSet(StringComparer.Ordinal);
            foreach (var (name, buffer) in module.named_buffers(recurse: false).ToList())
            {
                var full = Join(prefix, name);
                if (!persistent.Contains(name))
                {
                    throw new InvalidOperationException($"{module.GetType().Name} has the non-persistent buffer '{full}', which its weights file cannot restore.");
                }

                var replacement = create(full, buffer).DetachFromDisposeScope();
                Set(module, name, buffer, replacement, () => RegisterBuffer.Invoke(module, [name, replacement, true]));
            }
        }
    }

    private static void Set(nn.Module module, string name, Tensor current, Tensor replacement, Action register)
    {
        var type = module.GetType();
        var property = type.GetProperty(name, BindingFlags.Public | BindingFlags.Instance);
        if (property?.SetMethod is { IsPublic: true } && property.PropertyType.IsInstanceOfType(replacement))
        {
            // The module's own setter (Linear, Conv2d, Embedding, ...) keeps its fields, or its native module, in step.
            property.SetValue(module, replacement);
            return;
        }

        for (var declaring = type; declaring is not null && declaring != typeof(nn.Module); declaring = declaring.BaseType)
        {
            var field = declaring.GetFields(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.DeclaredOnly)
                .FirstOrDefault(f => (f.GetCustomAttribute<ComponentNameAttribute>()?.Name ?? f.Name) == name && f.FieldType.IsInstanceOfType(replacement));
            if (field is not null)
            {
                field.SetValue(module, replacement);
                register();
                current.Dispose();
                return;
            }
        }

        throw new InvalidOperationException($"{type.Name} holds '{name}' in neither a settable property nor a field, so it cannot be replaced.");
    }

    private static string Join(string prefix, string name) => prefix.Length == 0 ? name : $"{prefix}.{name}";
}
