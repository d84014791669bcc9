package node_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/ingest"
	"github.com/theprotocol-dev/theprotocol/node"
	"github.com/theprotocol-dev/theprotocol/testenv"
)

// browserPath finds Debian's chromium. With THEPROTOCOL_REQUIRE_BROWSER=1
// (make test, which installs it) a missing browser fails the test rather
// than skipping it, so the page cannot go untested unnoticed.
func browserPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("THEPROTOCOL_REQUIRE_BROWSER") == "1" {
		t.Fatal("chromium is required (THEPROTOCOL_REQUIRE_BROWSER=1) but not installed: apt-get install chromium")
	}
	t.Skip("chromium not installed (set THEPROTOCOL_REQUIRE_BROWSER=1 to fail instead)")
	return ""
}

// TestMonitorPageInABrowser opens /ui in headless Chromium the way a person
// would, makes a paid call (token issued by the payer's registry, settled
// by the payee) while the page is open, and waits for the page to show the
// supply audit at delta 0, the payment events arriving over the stream and
// the call's token → settled → fee trace. A screenshot is kept.
func TestMonitorPageInABrowser(t *testing.T) {
	t.Parallel()
	chromium := browserPath(t)
	ctx := context.Background()
	frame, reg := testRegistry(t)
	frame.GenesisSupplyUnits = 1_000_000 * 100_000_000
	dataDir := t.TempDir()
	n, err := node.Start(ctx, node.Options{
		Frame: frame, Registry: reg, PostgresAdminURL: testenv.PostgresURL(t),
		TemporalAddr: testenv.TemporalAddr(t), KafkaBrokers: testenv.KafkaBrokers(t),
		DataDir: dataDir, WriteAdminCredentials: true, Log: quietLog,
	})
	require.NoError(t, err)
	t.Cleanup(func() { n.Stop(context.Background()) })
	t.Cleanup(func() { deleteSchedules(n, reg.ID) })
	c := httpClient{t, n.URL()}

	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	// The first run starts the browser and must not carry a timeout (it
	// would bound the browser's life); later steps are bounded.
	require.NoError(t, chromedp.Do(browser, chromedp.Navigate("about:blank")))
	bctx, cancel := context.WithTimeout(browser, 3*time.Minute)
	defer cancel()

	// The page is open and its stream connected before the call is made:
	// the payment events must arrive live, not only as backlog.
	require.NoError(t, chromedp.Do(bctx,
		chromedp.Navigate(n.URL()+"/ui"),
		chromedp.WaitVisible(chromedp.ID("delta")),
		chromedp.Poll[chromedp.Void](`document.getElementById("stream-status").textContent === "live" && document.getElementById("frame").textContent !== "…"`, chromedp.WithPollingTimeout(60*time.Second)),
	))
	shown, err := chromedp.Run(bctx, chromedp.Text(chromedp.ID("frame")))
	require.NoError(t, err)
	require.Equal(t, frame.ID, shown, "the page names the node's frame")

	// A malformed cursor is refused before any stream opens.
	require.Equal(t, 400, c.call("GET", "/api/v1/events/stream?after=12.x", "", nil, nil))

	admin := c.adminToken(dataDir, reg.ID)
	dev, devTok := c.signUp("Grace", "grace@example.org")
	newAgent := func() (string, string) {
		var bt struct {
			Token string `json:"bootstrap_token"`
		}
		require.Equal(t, 201, c.call("POST", "/api/v1/bootstrap-tokens", devTok, map[string]any{}, &bt))
		var ag struct {
			DID          string `json:"did"`
			ClientID     string `json:"client_id"`
			ClientSecret string `json:"client_secret"`
		}
		require.Equal(t, 201, c.call("POST", "/api/v1/agents", bt.Token, map[string]any{}, &ag))
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		require.Equal(t, 200, c.call("POST", "/api/v1/auth/token", "", map[string]string{"grant_type": "client_credentials", "client_id": ag.ClientID, "client_secret": ag.ClientSecret}, &tok))
		return ag.DID, tok.AccessToken
	}
	require.Equal(t, 201, c.call("POST", "/api/v1/admin/grants", admin, map[string]any{"to": dev.AccountID, "amount": "100", "reason": "bonds"}, nil))
	client, clientTok := newAgent()
	service, serviceTok := newAgent()
	t.Cleanup(func() { terminateBonds(n, client, service) })
	require.Equal(t, 201, c.call("POST", "/api/v1/admin/grants", admin, map[string]any{"to": client, "amount": "50", "reason": "ui"}, nil))

	var token struct {
		Token string `json:"token"`
	}
	require.Equal(t, 201, c.call("POST", "/api/v1/payments/tokens", clientTok, map[string]any{"payee": service, "max_amount": "5", "description": "ui test call"}, &token))
	var settled struct {
		FeeUnits int64 `json:"fee_units"`
		NetUnits int64 `json:"net_units"`
	}
	code := c.call("POST", "/api/v1/payments/settle", serviceTok, map[string]any{"token": token.Token, "amount": "2"}, &settled)
	require.True(t, code == 200 || code == 201, "settle: HTTP %d", code)

	// Delta 0 must be the audit after the call: wait for the settlement to
	// reach the EventStore, read how many events the audit has applied by
	// then, and wait for the page to show at least that many at delta 0.
	es := n.Pools[db.RoleEventStore]
	require.Eventually(t, func() bool {
		var k int
		require.NoError(t, es.QueryRow(ctx, `SELECT count(*) FROM events WHERE event_type = 'PaymentSettled'`).Scan(&k))
		return k == 1
	}, 60*time.Second, 100*time.Millisecond, "the settlement reaches the EventStore")
	var audit ingest.AuditReport
	require.Eventually(t, func() bool {
		require.Equal(t, 200, c.call("GET", "/api/v1/projections/supply-audit", "", nil, &audit))
		return audit.EventsApplied > 1
	}, 60*time.Second, 100*time.Millisecond)
	err = chromedp.Do(bctx,
		chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.getElementById("delta").dataset.delta === "0" && Number(document.getElementById("terms").dataset.eventsApplied) >= %d`, audit.EventsApplied), chromedp.WithPollingTimeout(90*time.Second)),
		chromedp.Poll[chromedp.Void](`document.querySelector('#events li[data-type="PaymentSettled"]') !== null && document.getElementById("trace-fee") !== null`, chromedp.WithPollingTimeout(90*time.Second)),
	)
	shot := screenshot(t, bctx)
	require.NoError(t, err, "the page shows delta 0 and the paid call (screenshot %s)", shot)
	delta, err := chromedp.Run(bctx, chromedp.Text(chromedp.ID("delta")))
	require.NoError(t, err)
	require.Equal(t, "0", delta)
	trace, err := chromedp.Run(bctx, chromedp.Text(chromedp.ID("trace")))
	require.NoError(t, err)
	require.Contains(t, trace, client+" → "+service)
	require.Contains(t, trace, "settled: 200000000 units")
	require.Contains(t, trace, "fee ")
}

// screenshot keeps the page as an artifact (go test -artifacts keeps the
// directory; otherwise it is the test's temporary one) and logs its path.
func screenshot(t *testing.T, ctx context.Context) string {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Logf("screenshot failed: %v", err)
		return ""
	}
	path := filepath.Join(t.ArtifactDir(), "ui.png")
	require.NoError(t, os.WriteFile(path, png, 0o644))
	t.Logf("screenshot: %s", path)
	return path
}
