using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;
using FalHints.Router.Requests;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Clustering.Redis;
using StackExchange.Redis;

namespace FalHints.Host.Hosting;

/// <summary>What a node knows about its own health: whether it is a live member and can reach its request store.</summary>
/// <param name="Healthy">Both hold.</param>
/// <param name="Member">This silo is listed as active in the cluster's membership table.</param>
/// <param name="StorageReachable">The request store answered its last probe.</param>
/// <param name="Problem">What is wrong, for people; null when healthy.</param>
public sealed record NodeHealthReport(bool Healthy, bool Member, bool StorageReachable, string? Problem);

/// <summary>
/// Checks the node every <see cref="ClusterSettings.HealthCheckInterval"/>: is this silo still an active row of the
/// membership table, and does the request store answer? <c>/health</c> answers from it. A membership table that lost
/// this silo's row (a Redis flushed, or restarted without persistence) cannot be repaired from inside: Orleans treats
/// the table as durable, so the node would never be declared dead, never re-register, and a restarted node would form
/// a second cluster. The node then reports unhealthy at once, marks its request store lost (request grains here write
/// their records back), and after <see cref="ClusterSettings.MembershipLossExitAfter"/> stops with exit code
/// <see cref="MembershipLostExitCode"/> and a message that says why, so a supervisor starts it again into a new table.
/// </summary>
[SuppressMessage("Design", "CA1001", Justification = "A CancellationTokenSource without timers or a wait handle holds nothing to dispose; the silo may stop it after the container disposed its services.")]
public sealed partial class NodeHealth : ILifecycleParticipant<ISiloLifecycle>
{
    /// <summary>The exit code of a node that stopped because its membership table lost it.</summary>
    public const int MembershipLostExitCode = 3;

    // A node whose graceful stop hangs on the missing table (Orleans retries its last table updates) is ended this
    // long after it began to stop.
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(10);

    private readonly IMembershipTable _membership;
    private readonly ILocalSiloDetails _silo;
    private readonly Func<CancellationToken, Task> _probeStorage;
    private readonly RequestStoreLosses _storeLosses;
    private readonly IHostApplicationLifetime _lifetime;
    private readonly TimeProvider _time;
    private readonly ILogger<NodeHealth> _logger;
    private readonly ClusterSettings _settings;
    private readonly bool _storeSharesTable;
    private readonly CancellationTokenSource _stop = new();
    private NodeHealthReport _report = new(false, false, false, "The node is starting.");
    private DateTimeOffset? _storageDownSince;
    private DateTimeOffset? _lostSince;

    internal NodeHealth(IMembershipTable membership, ILocalSiloDetails silo, Func<CancellationToken, Task> probeStorage, bool storeSharesTable,
        RequestStoreLosses storeLosses, ClusterSettings settings, IHostApplicationLifetime lifetime, TimeProvider time, ILogger<NodeHealth> logger)
    {
        (_membership, _silo, _probeStorage, _storeSharesTable, _storeLosses) = (membership, silo, probeStorage, storeSharesTable, storeLosses);
        (_settings, _lifetime, _time, _logger) = (settings, lifetime, time, logger);
    }

    /// <summary>The latest check.</summary>
    public NodeHealthReport Report => Volatile.Read(ref _report);

    /// <summary>How long the request store has been unreachable; zero while it answers.</summary>
    public TimeSpan StorageUnreachableFor => _storageDownSince is { } since ? _time.GetUtcNow() - since : TimeSpan.Zero;

    /// <summary>The process's exit code: 0, or <see cref="MembershipLostExitCode"/>.</summary>
    public int ExitCode { get; private set; }

    /// <inheritdoc />
    public void Participate(ISiloLifecycle lifecycle) =>
        lifecycle.Subscribe(nameof(NodeHealth), ServiceLifecycleStage.Active, StartAsync, _ => _stop.CancelAsync());

    /// <summary>Checks once, now; the loop calls this every interval.</summary>
    public async Task CheckAsync(CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        var reachable = await TryAsync(_probeStorage, cancellationToken);
        _storageDownSince = reachable ? null : _storageDownSince ?? now;

        string? problem = reachable ? null : $"The request store has not answered for {(now - _storageDownSince!.Value).TotalSeconds:0} s.";
        var member = false;
        try
        {
            var row = (await _membership.ReadRowAsync(_silo.SiloAddress, cancellationToken).WaitAsync(_settings.HealthCheckInterval * 2, cancellationToken)).TryGet(_silo.SiloAddress);
            member = row?.Item1.Status == SiloStatus.Active;
            if (row is null)
            {
                problem = Lost(now, "This silo is missing from the membership table");
            }
            else
            {
                _lostSince = null;
                if (!member)
                {
                    problem = $"The membership table lists this silo as {row.Item1.Status}.";
                }
            }
        }
        catch (RedisClusteringException ex)
        {
            // Redis answered, but the table is gone: "The Redis membership table version is missing".
            problem = Lost(now, $"The membership table is gone ({ex.Message})");
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            problem ??= $"The membership table cannot be read ({ex.GetBaseException().Message}).";
        }

        var report = new NodeHealthReport(problem is null, member, reachable, problem);
        var previous = Interlocked.Exchange(ref _report, report);
        if (previous.Healthy != report.Healthy || previous.Problem is null != (report.Problem is null))
        {
            if (report.Healthy)
            {
                LogHealthy(_logger, _silo.Name);
            }
            else
            {
                LogUnhealthy(_logger, _silo.Name, report.Problem!);
            }
        }

        if (_lostSince is { } lost && now - lost >= _settings.MembershipLossExitAfter && ExitCode == 0)
        {
            Exit();
        }
    }

    /// <summary>A probe for a Redis request store.</summary>
    internal static Func<CancellationToken, Task> RedisProbe(string connection, TimeSpan timeout)
    {
        var options = ConfigurationOptions.Parse(connection);
        options.AbortOnConnectFail = false;
        options.ConnectTimeout = options.SyncTimeout = options.AsyncTimeout = (int)timeout.TotalMilliseconds;
        var redis = new Lazy<Task<ConnectionMultiplexer>>(() => ConnectionMultiplexer.ConnectAsync(options));
        return async cancellationToken => await (await redis.Value).GetDatabase().PingAsync().WaitAsync(timeout, cancellationToken);
    }

    private async Task StartAsync(CancellationToken cancellationToken)
    {
        await CheckAsync(cancellationToken);
        _ = LoopAsync(_stop.Token);
    }

    private async Task LoopAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(_settings.HealthCheckInterval, _time);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                await CheckAsync(cancellationToken);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Notes that the table lost this silo (once per loss) and says so.</summary>
    private string Lost(DateTimeOffset now, string what)
    {
        if (_lostSince is { } since)
        {
            return Problem(since);
        }

        _lostSince = now;
        if (_storeSharesTable)
        {
            // The same Redis holds the requests: what it lost, the grains active here still hold.
            _storeLosses.Report();
        }

        LogMembershipLost(_logger, _silo.Name, _settings.MembershipLossExitAfter.TotalSeconds);
        return Problem(now);

        string Problem(DateTimeOffset since) =>
            $"{what} (was the cluster's Redis emptied, or restarted without persistence?); this node stops in {Math.Max(0, (since + _settings.MembershipLossExitAfter - now).TotalSeconds):0} s so it can be started again.";
    }

    private void Exit()
    {
        ExitCode = MembershipLostExitCode;
        Environment.ExitCode = MembershipLostExitCode;
        var message = $"falhints: silo {_silo.Name} stopped: the cluster's membership table lost it (Redis emptied, or restarted without persistence), "
            + $"and Orleans cannot rejoin a table from inside a running silo. Start the node again (exit code {MembershipLostExitCode}); run Redis with persistence (appendonly yes) to avoid this.";
        LogExiting(_logger, message);
        Console.Error.WriteLine(message);
        _lifetime.StopApplication();
        _ = Task.Run(async () =>
        {
            await Task.Delay(StopGrace, _time);
            LogStopHung(_logger, StopGrace.TotalSeconds);
            await Console.Error.FlushAsync();
            if (OperatingSystem.IsLinux())
            {
                // Not Environment.Exit: its exit handlers wait for the very host stop that hangs.
                ExitNow(MembershipLostExitCode);
            }

            Process.GetCurrentProcess().Kill();
        });
    }

    [DllImport("libc", EntryPoint = "_exit")]
    private static extern void ExitNow(int status);

    private static async Task<bool> TryAsync(Func<CancellationToken, Task> probe, CancellationToken cancellationToken)
    {
        try
        {
            await probe(cancellationToken);
            return true;
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }

    [LoggerMessage(1, LogLevel.Warning, "Silo {Silo} is unhealthy: {Problem}")]
    private static partial void LogUnhealthy(ILogger logger, string silo, string problem);

    [LoggerMessage(2, LogLevel.Information, "Silo {Silo} is healthy")]
    private static partial void LogHealthy(ILogger logger, string silo);

    [LoggerMessage(3, LogLevel.Critical, "Silo {Silo} is missing from the membership table; it stops in {Seconds} s so a supervisor can start it again")]
    private static partial void LogMembershipLost(ILogger logger, string silo, double seconds);

    [LoggerMessage(4, LogLevel.Critical, "{Message}")]
    private static partial void LogExiting(ILogger logger, string message);

    [LoggerMessage(5, LogLevel.Critical, "The node did not stop within {Seconds} s of leaving; ending the process")]
    private static partial void LogStopHung(ILogger logger, double seconds);
}
