using System.Diagnostics;
using System.Globalization;
using FalHints.Host.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace FalHints.Tests.Support;

/// <summary>
/// A real redis-server on a free loopback port, run as the README says to run it: with persistence (an append-only
/// file in a temporary folder), so a restart keeps the cluster's membership table and request state. Stopped on dispose.
/// </summary>
public sealed class RedisServer : IDisposable
{
    private readonly TempDirectory _data = new();
    private Process _process = null!;

    private RedisServer(int port) => Port = port;

    public int Port { get; }

    public string ConnectionString => $"127.0.0.1:{Port}";

    public static async Task<RedisServer> StartAsync()
    {
        var redis = new RedisServer(HostProcess.FreeTcpPort());
        await redis.StartProcessAsync();
        return redis;
    }

    /// <summary>Stops the server as an operator or a service manager would (SIGTERM: it writes its append-only file first).</summary>
    public async Task StopAsync()
    {
        using (var term = Process.Start("kill", ["-TERM", _process.Id.ToString(CultureInfo.InvariantCulture)]))
        {
            await term.WaitForExitAsync();
        }

        await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
    }

    /// <summary>Starts the server again on the same port and data folder.</summary>
    public Task RestartAsync()
    {
        _process.Dispose();
        return StartProcessAsync();
    }

    /// <summary>Empties every database, as a careless FLUSHALL or a restart without persistence would.</summary>
    public async Task FlushAsync()
    {
        using var flush = Process.Start(new ProcessStartInfo("redis-cli", ["-p", Port.ToString(CultureInfo.InvariantCulture), "FLUSHALL"])
        {
            RedirectStandardOutput = true,
            UseShellExecute = false,
        })!;
        var answer = await flush.StandardOutput.ReadToEndAsync();
        await flush.WaitForExitAsync();
        if (!answer.Contains("OK", StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"redis-cli FLUSHALL answered '{answer.Trim()}'.");
        }
    }

    /// <summary>A started Orleans client of the cluster whose nodes use this Redis, as a caller's program would connect.</summary>
    public async Task<IHost> ConnectClientAsync()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["FalHints:Cluster:Mode"] = "redis",
            ["FalHints:Cluster:RedisConnection"] = ConnectionString,
        }).Build();
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.UseOrleansClient(c => c.UseFalHintsClustering(configuration, TimeSpan.FromSeconds(60)));
        var host = builder.Build();
        await host.StartAsync();
        return host;
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            _process.WaitForExit();
        }

        _process.Dispose();
        _data.Dispose();
    }

    private async Task StartProcessAsync()
    {
        var start = new ProcessStartInfo("redis-server")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[] { "--port", Port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--dir", _data.Path, "--save", "", "--appendonly", "yes" })
        {
            start.ArgumentList.Add(argument);
        }

        try
        {
            _process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new InvalidOperationException("redis-server is not installed (bash .ci/run installs it: apt-get install redis-server).", ex);
        }

        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _process.OutputDataReceived += (_, e) =>
        {
            if (e.Data?.Contains("Ready to accept connections", StringComparison.Ordinal) == true)
            {
                ready.TrySetResult();
            }
        };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        await ready.Task.WaitAsync(TimeSpan.FromSeconds(30));
    }
}
