using FalHints.Client.Apps;
using FalHints.Client.Requests;
using FalHints.Tests.Gateway;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace FalHints.Tests.Dashboard;

/// <summary>A real browser (Debian's chromium, driven by Playwright) finds the live runners and their hints.</summary>
public sealed class DashboardBrowserTests(GatewayHost node) : IClassFixture<GatewayHost>
{
    private const string Chromium = "/usr/bin/chromium";

    private static async Task<(IPlaywright Playwright, IBrowser Browser, IPage Page)> OpenAsync()
    {
        Assert.True(File.Exists(Chromium), $"{Chromium} is missing; install Debian's chromium (bash .ci/run does).");
        var playwright = await Playwright.CreateAsync();
        var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Chromium,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        });
        var context = await browser.NewContextAsync(new BrowserNewContextOptions
        {
            ExtraHTTPHeaders = new Dictionary<string, string> { ["Authorization"] = $"Key {GatewayHost.ApiKey}" },
        });
        return (playwright, browser, await context.NewPageAsync());
    }

    [Fact]
    public async Task Runners_view_shows_the_live_runners_and_the_hints_they_hold()
    {
        var client = new FalHintsClient(node.Grains);
        var result = await client.SubmitAsync(AnyModel.AppId, """{"model":"tiny/delta","prompt":"for the page"}""", "tiny/delta");
        Assert.Null(result.Error);
        var (playwright, browser, page) = await OpenAsync();
        try
        {
            await page.GotoAsync($"{node.Url}/runners");

            var row = page.Locator($"tr[data-runner='{result.RunnerId}']").First;
            await Expect(row).ToContainTextAsync("tiny/delta", new LocatorAssertionsToContainTextOptions { Timeout = 15_000 });
            // Two runners, each hosting the node's three apps (any-model and two test apps).
            await Expect(page.Locator("tr[data-runner]")).ToHaveCountAsync(6, new LocatorAssertionsToHaveCountOptions { Timeout = 15_000 });
            await Expect(page.Locator("h2").First).ToContainTextAsync("falhints/any-model");
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(Path.GetTempPath(), "falhints-runners.png"), FullPage = true });
        }
        finally
        {
            await browser.DisposeAsync();
            playwright.Dispose();
        }
    }

    [Fact]
    public async Task Orleans_dashboard_is_served_and_shows_the_silo()
    {
        var (playwright, browser, page) = await OpenAsync();
        try
        {
            var response = await page.GotoAsync($"{node.Url}/dashboard");

            Assert.True(response!.Ok, $"GET /dashboard answered {response.Status}");
            await Expect(page.GetByText("Active Silos", new PageGetByTextOptions { Exact = false }).First).ToBeVisibleAsync(new LocatorAssertionsToBeVisibleOptions { Timeout = 30_000 });
            await page.GetByText("Grains", new PageGetByTextOptions { Exact = true }).First.ClickAsync();
            await Expect(page.GetByText("RunnerGrain").First).ToBeVisibleAsync(new LocatorAssertionsToBeVisibleOptions { Timeout = 30_000 });
            await Expect(page.GetByText("RouterGrain").First).ToBeVisibleAsync(new LocatorAssertionsToBeVisibleOptions { Timeout = 30_000 });
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(Path.GetTempPath(), "falhints-dashboard.png"), FullPage = true });
        }
        finally
        {
            await browser.DisposeAsync();
            playwright.Dispose();
        }
    }
}
