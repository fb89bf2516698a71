using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace FalHints.Runner.Pipelines;

/// <summary>
/// A table of token vectors, as <c>nn.Embedding</c> (the same state-dict name, <c>weight</c>, the same initial draw and
/// the same lookup), written in managed code: TorchSharp's native Embedding allocates and draws its whole table on the
/// CPU even when asked for the meta device, which would cost every load a full random initialisation.
/// </summary>
internal sealed class TokenEmbedding : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = nameof(weight))]
    private Parameter _weight;

    public TokenEmbedding(long count, long dimensions, Device? device)
        : base(nameof(TokenEmbedding))
    {
        _weight = new Parameter(empty(count, dimensions, device: device));
        // N(0, 1), as nn.Embedding draws it; nothing is drawn on the meta device.
        nn.init.normal_(_weight);
        RegisterComponents();
    }

    /// <summary>The table, one row per token.</summary>
    public Parameter weight
    {
        get => _weight;
        set
        {
            if (value.Handle != _weight.Handle)
            {
                _weight.Dispose();
                _weight = (Parameter)value.DetachFromDisposeScope();
                ConditionallyRegisterParameter(nameof(weight), _weight);
            }
        }
    }

    /// <summary>Tokens <c>[n]</c> to their vectors <c>[n, dimensions]</c>.</summary>
    public override Tensor forward(Tensor tokens) => _weight.index_select(0, tokens);
}
