package sdk_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/config"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/ingest"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/node"
	"github.com/theprotocol-dev/theprotocol/sdk"
	"github.com/theprotocol-dev/theprotocol/sdk/demo"
	"github.com/theprotocol-dev/theprotocol/testenv"
	"github.com/theprotocol-dev/theprotocol/workflows"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// An agent built only with the SDK pays another agent's endpoint guarded
// by PaymentVerifier: 402 first, then a payment token, then the answer.
// The payer loses exactly the price, the payee gains the price less the
// fee, the same token is refused when presented again, and the frame's
// supply audit stays exact.
func TestPaidCallThroughTheSDK(t *testing.T) {
	ctx := context.Background()
	n, frame, creds := startNode(t)
	const price = 3 * 100_000_000
	res, err := runDemo(t, n, creds, demo.Config{PriceUnits: price, Log: t.Logf})
	require.NoError(t, err)
	require.Equal(t, http.StatusPaymentRequired, res.First)
	require.Equal(t, "42", res.Answer)
	fee, err := ledger.TransferFee(price, ledger.BaseFeeBps)
	require.NoError(t, err)
	require.Equal(t, "you said: hello", res.A2AAnswer)
	// Two paid calls (HTTP and A2A message/send).
	require.Equal(t, int64(2*price), res.ClientBefore-res.ClientAfter, "the payer pays the price exactly, twice")
	require.Equal(t, 2*(int64(price)-fee.FeeUnits), res.ServiceAft-res.ServiceBefore, "the payee gets the price less the fee, twice")
	require.Equal(t, http.StatusPaymentRequired, res.Replay, "the same token presented again is refused")

	// Without a token: 402 with the price, and nothing reserved.
	resp, err := http.Get(res.ServiceURL)
	require.NoError(t, err)
	var offer struct {
		Payment sdk.Offer `json:"payment"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&offer))
	resp.Body.Close()
	require.Equal(t, http.StatusPaymentRequired, resp.StatusCode)
	require.Equal(t, int64(price), offer.Payment.PriceUnits)
	require.Equal(t, res.Service, offer.Payment.Payee)

	// The events reach the EventStore and the audit is exact.
	teg, es := n.Pools[db.RoleTEG], n.Pools[db.RoleEventStore]
	var outbox int
	require.NoError(t, teg.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&outbox))
	require.Eventually(t, func() bool {
		var in int
		require.NoError(t, es.QueryRow(ctx, `SELECT count(*) FROM events WHERE source = 'teg'`).Scan(&in))
		return in >= outbox
	}, 60*time.Second, 200*time.Millisecond)
	for _, typ := range []string{"PaymentTokenIssued", "PaymentSettled"} {
		var k int
		require.NoError(t, es.QueryRow(ctx, `SELECT count(*) FROM events WHERE event_type = $1`, typ).Scan(&k))
		require.Equal(t, 2, k, typ)
	}
	rep, err := ingest.Audit(ctx, es, frame.ID)
	require.NoError(t, err)
	require.Zero(t, rep.Delta)
}

type adminCreds struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

// startNode starts a one-registry frame with every role (and Kafka, for
// the audit) and returns it with its dev admin client.
func startNode(tb testing.TB) (*node.Node, config.Frame, adminCreds) {
	ctx := context.Background()
	id := fmt.Sprintf("p%d", time.Now().UnixNano()%1_000_000_000)
	reg := config.Registry{ID: id, Mainframe: true, Roles: []string{"registry", "teg", "eventstore", "worker"}, Namespace: testenv.TestNamespace}
	frame := config.Frame{ID: "f" + id, TrustDomain: "f.theprotocol.test", Currency: "AVT", Genesis: true, Registries: []config.Registry{reg},
		GenesisSupplyUnits: 1_000_000 * 100_000_000}
	dataDir := tb.TempDir()
	n, err := node.Start(ctx, node.Options{
		Frame: frame, Registry: reg, PostgresAdminURL: testenv.PostgresURL(tb), TemporalAddr: testenv.TemporalAddr(tb),
		KafkaBrokers: testenv.KafkaBrokers(tb), DataDir: dataDir, WriteAdminCredentials: true,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	require.NoError(tb, err)
	tb.Cleanup(func() { n.Stop(context.Background()) })
	tb.Cleanup(func() {
		for _, s := range []string{"idempotency-sweep-", "hold-expiry-", "staking-rewards-", "balance-checkpoint-"} {
			_ = n.Temporal.ScheduleClient().GetHandle(ctx, s+id).Delete(ctx)
		}
	})
	var creds adminCreds
	raw, err := os.ReadFile(node.AdminCredentialsFile(dataDir, id))
	require.NoError(tb, err)
	require.NoError(tb, json.Unmarshal(raw, &creds))
	return n, frame, creds
}

// runDemo runs the demo against n and cleans up its server and bonds.
func runDemo(tb testing.TB, n *node.Node, creds adminCreds, cfg demo.Config) (demo.Result, error) {
	cfg.API, cfg.AdminClientID, cfg.AdminClientSecret = n.URL(), creds.ClientID, creds.ClientSecret
	res, err := demo.Run(context.Background(), cfg)
	if res.Stop != nil {
		tb.Cleanup(res.Stop)
	}
	tb.Cleanup(func() {
		for _, did := range []string{res.Service, res.Client} {
			if did != "" {
				_ = n.Temporal.TerminateWorkflow(context.Background(), workflows.BondWorkflowID(did), "", "test over")
			}
		}
	})
	return res, err
}
