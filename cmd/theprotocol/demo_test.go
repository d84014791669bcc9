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

// The dev stack's demonstration agents set themselves up on the mainframe
// through the SDK and keep making paid calls until stopped.
func TestDemoAgentsMakePaidCalls(t *testing.T) {
	ctx := context.Background()
	id := fmt.Sprintf("d%d", time.Now().UnixNano()%1_000_000_000)
	reg := config.Registry{ID: id, Mainframe: true, Roles: []string{"registry", "teg", "worker"}, Namespace: testenv.TestNamespace}
	frame := config.Frame{ID: "f" + id, TrustDomain: "f.theprotocol.test", Currency: "AVT", Genesis: true, Registries: []config.Registry{reg},
		GenesisSupplyUnits: 1_000_000 * 100_000_000}
	dataDir := t.TempDir()
	n, err := node.Start(ctx, node.Options{Frame: frame, Registry: reg, PostgresAdminURL: testenv.PostgresURL(t), TemporalAddr: testenv.TemporalAddr(t),
		DataDir: dataDir, WriteAdminCredentials: true, Log: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	t.Cleanup(func() { n.Stop(context.Background()) })
	t.Cleanup(func() {
		for _, s := range []string{"idempotency-sweep-", "hold-expiry-", "staking-rewards-", "balance-checkpoint-"} {
			_ = n.Temporal.ScheduleClient().GetHandle(ctx, s+id).Delete(ctx)
		}
	})

	var buf logbuf.Buffer
	stop := startDemoAgents(ctx, []*node.Node{n}, dataDir, time.Second, slog.New(slog.NewTextHandler(&buf, nil)))
	ok := assert.Eventually(t, func() bool {
		return strings.Count(buf.String(), `msg="demo paid call" component=demo-agents answer=42`) >= 2
	}, 60*time.Second, 100*time.Millisecond, "two scheduled paid calls")
	stop()
	if !ok {
		t.Fatalf("log:\n%s", buf.String())
	}
	// The agents' bond workflows outlive the node in the shared namespace.
	for _, m := range regexp.MustCompile(`(?:service|client)=(did:theprotocol:[0-9a-f-]+)`).FindAllStringSubmatch(buf.String(), -1) {
		_ = n.Temporal.TerminateWorkflow(ctx, workflows.BondWorkflowID(m[1]), "", "test over")
	}
	require.NotContains(t, buf.String(), "level=WARN")
}
