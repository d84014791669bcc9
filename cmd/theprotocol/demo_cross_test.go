package main

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/config"
	"github.com/theprotocol-dev/theprotocol/node"
	"github.com/theprotocol-dev/theprotocol/testenv"
	"github.com/theprotocol-dev/theprotocol/testenv/logbuf"
	"github.com/theprotocol-dev/theprotocol/workflows"
)

// With an operator registry in the frame (alpha-op1 in the dev topology)
// the service agent lives there: the scheduled paid calls settle across
// registries.
func TestDemoAgentsSettleAcrossRegistries(t *testing.T) {
	ctx := context.Background()
	id := fmt.Sprintf("%d", time.Now().UnixNano()%1_000_000_000)
	mainReg := config.Registry{ID: "dm" + id, Mainframe: true, Roles: []string{"registry", "teg", "eventstore", "worker"}, Namespace: testenv.TestNamespace}
	opReg := config.Registry{ID: "do" + id, Roles: []string{"registry", "teg", "worker"}, Namespace: testenv.TestNamespace}
	frame := config.Frame{ID: "fd" + id, TrustDomain: "fd" + id + ".theprotocol.test", Currency: "AVT", Genesis: true,
		Registries: []config.Registry{mainReg, opReg}, GenesisSupplyUnits: 1_000_000 * 100_000_000}
	dataDir := t.TempDir()
	start := func(reg config.Registry, es string) *node.Node {
		n, err := node.Start(ctx, node.Options{Frame: frame, Registry: reg, PostgresAdminURL: testenv.PostgresURL(t), TemporalAddr: testenv.TemporalAddr(t),
			KafkaBrokers: testenv.KafkaBrokers(t), DataDir: dataDir, WriteAdminCredentials: reg.Mainframe, EventStoreURL: es, Log: slog.New(slog.DiscardHandler)})
		require.NoError(t, err)
		t.Cleanup(func() { n.Stop(context.Background()) })
		return n
	}
	m := start(mainReg, "")
	op := start(opReg, m.URL())
	t.Cleanup(func() {
		for _, reg := range []string{mainReg.ID, opReg.ID} {
			for _, s := range []string{"idempotency-sweep-", "hold-expiry-", "staking-rewards-", "balance-checkpoint-", "xfer-prepare-sweep-"} {
				_ = m.Temporal.ScheduleClient().GetHandle(ctx, s+reg).Delete(ctx)
			}
		}
	})
	require.NoError(t, m.ConnectPeer(ctx, opReg.ID, op.MTLSURL()))
	require.NoError(t, op.ConnectPeer(ctx, mainReg.ID, m.MTLSURL()))

	var buf logbuf.Buffer
	stop := startDemoAgents(ctx, []*node.Node{m, op}, dataDir, time.Second, slog.New(slog.NewTextHandler(&buf, nil)))
	ok := assert.Eventually(t, func() bool {
		return strings.Count(buf.String(), `msg="demo paid call" component=demo-agents answer=42`) >= 2
	}, 120*time.Second, 100*time.Millisecond, "two scheduled paid calls")
	stop()
	if !ok {
		t.Fatalf("log:\n%s", buf.String())
	}
	for _, m2 := range regexp.MustCompile(`(?:service|client)=(did:theprotocol:[0-9a-f-]+)`).FindAllStringSubmatch(buf.String(), -1) {
		_ = m.Temporal.TerminateWorkflow(ctx, workflows.BondWorkflowID(m2[1]), "", "test over")
	}
	require.Contains(t, buf.String(), "service_registry="+opReg.ID)
	require.NotContains(t, buf.String(), "level=WARN")
	var settled int
	require.NoError(t, m.Pools["teg"].QueryRow(ctx, `SELECT count(*) FROM xfers WHERE client_key LIKE '#paid:%' AND target_registry = $1`, opReg.ID).Scan(&settled))
	require.GreaterOrEqual(t, settled, 3, "the walkthrough's two calls and the scheduled ones crossed over")
}
