using System.Diagnostics;
using System.Text;

namespace FalHints.Tests.Support;

/// <summary>Runs the real <c>falhints</c> program (the Silo.Host build output) as a child process.</summary>
public sealed class HostProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly List<(string Marker, TaskCompletionSource Seen)> _waiters = [];

    // The request store of a 'serve' started without one of its own, removed on dispose.
    private TempDirectory? _data;

    private HostProcess(Process process) => _process = process;

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    public int ExitCode => _process.ExitCode;

    public bool HasExited => _process.HasExited;

    /// <summary>Sends SIGTERM, as an operator stopping the node would.</summary>
    public void Terminate()
    {
        using var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
    }

    /// <summary>Kills the process at once (SIGKILL), as a crash would.</summary>
    public void Kill() => _process.Kill(entireProcessTree: true);

    public Task WaitForExitAsync(TimeSpan timeout) => _process.WaitForExitAsync().WaitAsync(timeout);

    public static string HostAssembly { get; } = FindHostAssembly();

    /// <summary>
    /// Starts the program. A <c>serve</c> without <c>--data</c> or <c>--storage</c> gets a request store of its own in a
    /// temporary folder, so parallel tests never share one.
    /// </summary>
    public static HostProcess Start(params string[] arguments) => Start(null, arguments);

    /// <summary>Starts the program with settings in its environment (such as <c>FalHints__Cluster__MembershipLossExitAfter</c>).</summary>
    public static HostProcess Start(IReadOnlyDictionary<string, string>? environment, params string[] arguments)
    {
        TempDirectory? data = null;
        if (arguments is ["serve", ..] && !arguments.Contains("--data") && !arguments.Contains("--storage"))
        {
            data = new TempDirectory();
            arguments = [.. arguments, "--data", data.Path];
        }

        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(HostAssembly);
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["DOTNET_gcServer"] = "0";
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[name] = value;
        }

        var host = new HostProcess(new Process { StartInfo = start, EnableRaisingEvents = true }) { _data = data };
        host._process.OutputDataReceived += (_, e) => host.Append(e.Data);
        host._process.ErrorDataReceived += (_, e) => host.Append(e.Data);
        host._process.Start();
        host._process.BeginOutputReadLine();
        host._process.BeginErrorReadLine();
        return host;
    }

    /// <summary>Runs the program to completion and returns it.</summary>
    public static async Task<HostProcess> RunAsync(TimeSpan timeout, params string[] arguments)
    {
        var host = Start(arguments);
        using var cancellation = new CancellationTokenSource(timeout);
        await host._process.WaitForExitAsync(cancellation.Token);
        host._process.WaitForExit();
        return host;
    }

    /// <summary>Completes when a line containing <paramref name="marker"/> has been printed; fails if the process exits first.</summary>
    public async Task WaitForOutputAsync(string marker, TimeSpan timeout)
    {
        var seen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_output)
        {
            if (_output.ToString().Contains(marker, StringComparison.Ordinal))
            {
                return;
            }

            _waiters.Add((marker, seen));
        }

        var exited = _process.WaitForExitAsync();
        var first = await Task.WhenAny(seen.Task, exited, Task.Delay(timeout));
        if (first != seen.Task)
        {
            var why = first == exited ? $"exited with code {_process.ExitCode}" : $"did not print it within {timeout}";
            throw new Xunit.Sdk.XunitException($"falhints {why} while waiting for '{marker}'. Output:\n{Output}");
        }
    }

    /// <summary>A loopback port for a node or server a test starts, never the same twice in one run.</summary>
    public static int FreeTcpPort() => FalHints.Benchmarks.LoopbackPorts.Next();

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }

        _process.Dispose();
        _data?.Dispose();
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
            foreach (var waiter in _waiters.Where(w => line.Contains(w.Marker, StringComparison.Ordinal)).ToList())
            {
                waiter.Seen.TrySetResult();
                _waiters.Remove(waiter);
            }
        }
    }

    private static string FindHostAssembly()
    {
        // The test project references Silo.Host, so its build output (falhints.dll with its runtimeconfig) sits beside the tests.
        var path = Path.Combine(AppContext.BaseDirectory, "falhints.dll");
        return File.Exists(path) && File.Exists(Path.ChangeExtension(path, ".runtimeconfig.json"))
            ? path
            : throw new FileNotFoundException("The falhints host is not in the test output folder.", path);
    }
}
