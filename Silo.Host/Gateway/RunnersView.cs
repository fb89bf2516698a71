using System.Text.Json;
using FalHints.Client.Contracts;
using FalHints.Runner.Apps;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace FalHints.Host.Gateway;

/// <summary>
/// Which runner holds what: <c>GET /api/runners</c> (JSON) and <c>GET /runners</c> (a page that refreshes every second),
/// per app (queue length, hit rate, fallbacks to a runner without the hint, retries) and per runner (silo, device,
/// hints, loading, models kept warm in host memory, in flight, cache bytes of budget, cache hits and misses, last seen).
/// </summary>
public static class RunnersView
{
    private static readonly JsonSerializerOptions Json = GatewayJson.Options;

    /// <summary>Maps the page and its API.</summary>
    public static IEndpointRouteBuilder MapRunnersView(this IEndpointRouteBuilder routes)
    {
        routes.MapGet("/api/runners", ReadAsync);
        routes.MapGet("/runners", () => Results.Text(Page, "text/html; charset=utf-8"));
        return routes;
    }

    private static async Task<IResult> ReadAsync(IGrainFactory grains, IServiceProvider services, TimeProvider time)
    {
        var now = time.GetUtcNow();
        var apps = new List<object>();
        foreach (var appId in AppIdsOf(services))
        {
            var snapshot = await grains.GetGrain<IRouterGrain>(appId).GetSnapshotAsync();
            var hinted = snapshot.Hits + snapshot.Misses;
            apps.Add(new
            {
                app_id = appId,
                policy = snapshot.Policy,
                queue_length = snapshot.Queued,
                in_flight = snapshot.InFlight,
                hits = snapshot.Hits,
                fallbacks = snapshot.Misses,
                hit_rate = hinted == 0 ? (double?)null : snapshot.Hits / (double)hinted,
                retries = snapshot.Retries,
                runners = snapshot.Runners.Select(r => new
                {
                    runner_id = r.RunnerId,
                    silo = r.Silo,
                    device = r.RunnerId[(r.RunnerId.LastIndexOf('/') + 1)..],
                    hints = r.Hints,
                    loading = r.Loading,
                    warm = r.Warm.IsDefault ? [] : r.Warm,
                    in_flight = r.InFlight,
                    capacity = r.Capacity,
                    cache_bytes = r.Cache.BytesUsed,
                    cache_budget_bytes = r.Cache.BudgetBytes,
                    cache_hits = r.Cache.Hits,
                    cache_misses = r.Cache.Misses,
                    loads = r.Cache.Loads,
                    evictions = r.Cache.Evictions,
                    mean_load_ms = r.Cache.MeanLoadMs,
                    host_bytes = r.Cache.HostBytesUsed,
                    host_budget_bytes = r.Cache.HostBudgetBytes,
                    promotions = r.Cache.Promotions,
                    mean_promotion_ms = r.Cache.MeanPromotionMs,
                    last_seen = r.LastSeen,
                    seconds_since_seen = (now - r.LastSeen).TotalSeconds,
                }),
            });
        }

        return Results.Json(new { apps }, Json);
    }

    /// <summary>The apps this node's runners host (a cluster's nodes host the same apps).</summary>
    private static IEnumerable<string> AppIdsOf(IServiceProvider services) =>
        services.GetServices<FalAppRegistration>().Select(r => r.AppId(services)).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal);

    private const string Page = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <title>FalHints runners</title>
        <style>
          body { font: 14px system-ui, sans-serif; margin: 1.5rem; color: #1d1d1f; }
          h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
          table { border-collapse: collapse; width: 100%; }
          th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid #ddd; vertical-align: top; }
          th { background: #f4f4f6; }
          .hint { display: inline-block; background: #e3f0ff; border-radius: 4px; padding: 0 .35rem; margin: 0 .2rem .2rem 0; }
          .loading { background: #fff3d6; }
          .warm { background: #eceff3; color: #555; }
          .stale { color: #b00020; }
          .summary span { margin-right: 1.5rem; }
        </style>
        </head>
        <body>
        <h1>FalHints runners</h1>
        <p>Which runner holds which hints, refreshed every second. The <a href="/dashboard">Orleans Dashboard</a> shows grains and silos.</p>
        <div id="apps">Loading…</div>
        <script>
        const fmtBytes = b => b >= 1 << 30 ? (b / (1 << 30)).toFixed(1) + " GB" : (b / (1 << 20)).toFixed(1) + " MB";
        const esc = s => String(s).replace(/[&<>"]/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
        async function refresh() {
          try {
            const response = await fetch("/api/runners");
            if (!response.ok) throw new Error("HTTP " + response.status);
            const { apps } = await response.json();
            document.getElementById("apps").innerHTML = apps.map(app => `
              <h2>${esc(app.app_id)}</h2>
              <p class="summary"><span>policy <b>${esc(app.policy)}</b></span><span>queue <b data-queue>${app.queue_length}</b></span>
                <span>in flight <b>${app.in_flight}</b></span>
                <span>hit rate <b>${app.hit_rate === null || app.hit_rate === undefined ? "–" : (app.hit_rate * 100).toFixed(1) + " %"}</b></span>
                <span>fallbacks <b>${app.fallbacks}</b></span><span>retries <b>${app.retries}</b></span></p>
              <table><thead><tr><th>runner</th><th>silo</th><th>device</th><th>hints</th><th>in flight</th><th>cache</th><th>cache hits / misses</th><th>last seen</th></tr></thead>
              <tbody>${app.runners.map(r => `<tr data-runner="${esc(r.runner_id)}">
                <td>${esc(r.runner_id)}</td><td>${esc(r.silo)}</td><td>${esc(r.device)}</td>
                <td>${r.hints.map(h => `<span class="hint">${esc(h)}</span>`).join("")}${r.loading.map(h => `<span class="hint loading" title="loading">${esc(h)} …</span>`).join("")}${(r.warm || []).map(h => `<span class="hint warm" title="in host memory: a load is a copy to the device">${esc(h)} (warm)</span>`).join("")}</td>
                <td>${r.in_flight} / ${r.capacity}</td><td>${fmtBytes(r.cache_bytes)} of ${fmtBytes(r.cache_budget_bytes)}</td>
                <td>${r.cache_hits} / ${r.cache_misses}</td>
                <td class="${r.seconds_since_seen > 30 ? "stale" : ""}">${r.seconds_since_seen.toFixed(1)} s ago</td></tr>`).join("")}</tbody></table>`).join("");
          } catch (error) {
            document.getElementById("apps").textContent = "Could not read /api/runners: " + error.message;
          }
        }
        refresh();
        setInterval(refresh, 1000);
        </script>
        </body>
        </html>
        """;
}
