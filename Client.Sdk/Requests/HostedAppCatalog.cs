using FalHints.Client.Contracts;

namespace FalHints.Client.Requests;

/// <summary>
/// A client's view of the apps the cluster serves, read from the app registry at most once per
/// <see cref="RefreshInterval"/>, so a flood of requests for made-up apps costs the cluster one call a second and
/// creates no router or request grain. <see cref="FalHintsClient"/> checks every submission against it.
/// </summary>
public sealed class HostedAppCatalog(IGrainFactory grains, TimeProvider time)
{
    /// <summary>How long one answer of the registry is used.</summary>
    public static readonly TimeSpan RefreshInterval = TimeSpan.FromSeconds(1);

    private readonly Lock _gate = new();
    private Task<HostedApps>? _current;
    private long _readAt;

    /// <summary>
    /// True when no active silo serves <paramref name="appId"/> and every silo has said what it serves. While the registry
    /// cannot answer, or a silo has not reported yet, nothing is refused (the router's discovery timeout then applies).
    /// </summary>
    public async Task<bool> RefusesAsync(string appId, CancellationToken cancellationToken)
    {
        try
        {
            var apps = await Current().WaitAsync(cancellationToken);
            if (!apps.Refuses(appId))
            {
                return false;
            }

            // A silo may have started serving it since the last read: look again once before refusing.
            return (await Current(refresh: true).WaitAsync(cancellationToken)).Refuses(appId);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }

    /// <summary>The registry's answer, at most <see cref="RefreshInterval"/> old.</summary>
    internal Task<HostedApps> Current(bool refresh = false)
    {
        lock (_gate)
        {
            var age = time.GetElapsedTime(_readAt);
            if (_current is null || _current.IsFaulted || age >= RefreshInterval || (refresh && _current.IsCompleted && age >= RefreshInterval / 4))
            {
                _current = grains.GetGrain<IAppRegistryGrain>(0).GetAppsAsync();
                _readAt = time.GetTimestamp();
            }

            return _current;
        }
    }
}
