using System.Text;

namespace FalHints.Runner.Pipelines;

/// <summary>Turns a prompt into token ids and a noise seed, deterministically (FNV-1a over words).</summary>
internal static class PromptTokenizer
{
    private const ulong FnvOffset = 14695981039346656037;
    private const ulong FnvPrime = 1099511628211;

    public static long[] Encode(string prompt, int vocabSize)
    {
        var words = prompt.ToLowerInvariant()
            .Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return words.Length == 0
            ? [0]
            : words.Select(word => (long)(Hash(word) % (ulong)vocabSize)).ToArray();
    }

    public static ulong Seed(string prompt) => Hash(prompt);

    private static ulong Hash(string text)
    {
        var hash = FnvOffset;
        foreach (var b in Encoding.UTF8.GetBytes(text))
        {
            hash = (hash ^ b) * FnvPrime;
        }

        return hash;
    }
}
