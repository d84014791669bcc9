package node_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/bridge"
	"github.com/theprotocol-dev/theprotocol/config"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/node"
	"github.com/theprotocol-dev/theprotocol/testenv"
)

// TestBridgeFramesFederateByConfig runs two frames' mainframes as two
// processes that share nothing but their frame cards: each writes its
// card, each is started with the other's (-bridge-peer-cards), fetches
// and pins the other's bundle from its bundle endpoint and bridges with
// it; nothing connects them in process. An agent of frame A pays an agent
// of frame B with a plain POST /transfers (A finds B's agent through B's
// mainframe), B's agent redeems part back, and the reconciliation is at
// difference 0.
func TestBridgeFramesFederateByConfig(t *testing.T) {
	t.Parallel()
	suffix := fmt.Sprintf("%d", time.Now().UnixNano()%1_000_000_000)
	ports := freePorts(t, 6)
	dirA, dirB := t.TempDir(), t.TempDir()
	frame := func(id, currency string, p []int) (config.Frame, config.Registry) {
		reg := config.Registry{ID: id + "-main" + suffix, Mainframe: true, Roles: []string{"registry", "teg", "eventstore", "worker"},
			Namespace: testenv.TestNamespace, APIPort: p[0], MTLSPort: p[1], BundlePort: p[2]}
		return config.Frame{ID: id + suffix, TrustDomain: id + suffix + ".theprotocol.test", Currency: currency, Genesis: currency == "AVT",
			GenesisSupplyUnits: 1_000_000 * avt, Registries: []config.Registry{reg}}, reg
	}
	fa, ra := frame("ga", "AVT", ports[:3])
	fb, rb := frame("gb", "BVT", ports[3:])
	optsB := node.Options{
		Frame: fb, Registry: rb, PostgresAdminURL: testenv.PostgresURL(t),
		TemporalAddr: testenv.TemporalAddr(t), KafkaBrokers: testenv.KafkaBrokers(t),
		DataDir: dirB, WriteAdminCredentials: true, Log: quietLog, BridgeSettings: config.DefaultBridgeSettings(),
	}
	startB := func() *node.Node {
		n, err := node.Start(context.Background(), optsB)
		require.NoError(t, err)
		t.Cleanup(func() { n.Stop(context.Background()) })
		return n
	}
	// B first, alone: it writes its card.
	b := startB()
	t.Cleanup(func() { deleteSchedules(b, rb.ID); deleteSchedules(b, ra.ID) })
	cardB := filepath.Join(dirB, node.FrameCardFile)
	require.FileExists(t, cardB)
	// A in its own process, configured with B's card only.
	startFrameProcess(t, bridgeOriginSpec{
		Frame: fa, Registry: ra, PostgresAdminURL: optsB.PostgresAdminURL, TemporalAddr: optsB.TemporalAddr,
		KafkaBrokers: optsB.KafkaBrokers, DataDir: dirA, Window: 30 * time.Second, PeerCards: cardB,
	})
	cardA := filepath.Join(dirA, node.FrameCardFile)
	peerA, err := node.ReadFrameCard(cardA)
	require.NoError(t, err)
	require.Equal(t, fa.ID, peerA.Frame)
	require.Equal(t, fmt.Sprintf("https://127.0.0.1:%d", ra.MTLSPort), peerA.MTLSURL)
	// B again, now configured with A's card.
	b.Stop(context.Background())
	// One list for every frame: B skips its own card.
	optsB.BridgeSettings.PeerCards = cardA + "," + cardB
	b = startB()
	_, ok := b.Bridge.Peers.Get(fa.ID)
	require.True(t, ok, "B connected frame A from its card at start")

	ca, cb := httpClient{t, fmt.Sprintf("http://127.0.0.1:%d", ra.APIPort)}, httpClient{t, b.URL()}
	adminA, adminB := ca.adminToken(dirA, ra.ID), cb.adminToken(dirB, rb.ID)
	alice, aliceT := bridgeAgent(t, ca, adminA, "alice-"+suffix)
	bob, bobT := bridgeAgent(t, cb, adminB, "bob-"+suffix)
	t.Cleanup(func() { terminateBonds(b, alice, bob) })
	require.Equal(t, 201, ca.call("POST", "/api/v1/admin/grants", adminA, map[string]any{"to": alice, "amount": "100", "reason": "e2e"}, nil))

	var x bridgeDTO
	require.Equal(t, 202, ca.call("POST", "/api/v1/transfers", aliceT, map[string]any{"to": bob, "amount_units": 10 * avt}, &x))
	require.Equal(t, "send", x.Kind)
	wait := func(c httpClient, tok string, x bridgeDTO) bridgeDTO {
		require.Eventually(t, func() bool {
			require.Equal(t, 200, c.call("GET", "/api/v1/bridge/transfers/"+x.ID.String(), tok, nil, &x))
			return x.Status != "pending"
		}, time.Minute, 100*time.Millisecond)
		require.Equal(t, "completed", x.Status, "%+v", x)
		return x
	}
	done := wait(ca, aliceT, x)
	wrappedA := ledger.WrappedBucket(fa.ID)
	require.Equal(t, 10*avt-done.FeeUnits, bucketOf(t, b, bob, wrappedA))

	var r bridgeDTO
	require.Equal(t, 202, cb.call("POST", "/api/v1/bridge/redemptions", bobT, map[string]any{"frame": fa.ID, "to": alice, "amount_units": 4 * avt}, &r))
	wait(cb, bobT, r)
	require.Equal(t, 6*avt-done.FeeUnits, bucketOf(t, b, bob, wrappedA))

	// Both sides' view of the pair, as each frame's mainframe reports it.
	for _, side := range []struct {
		c      httpClient
		admin  string
		escrow int64 // the origin's escrow for the other frame
	}{{ca, adminA, 6 * avt}, {cb, adminB, 0}} {
		var rep bridge.Report
		require.Eventually(t, func() bool {
			require.Equal(t, 200, side.c.call("GET", "/api/v1/projections/bridge-reconciliation", side.admin, nil, &rep))
			return len(rep.Pairs) == 1 && rep.Pairs[0].PeerReachable && rep.Pairs[0].InFlightSends == 0 && rep.Pairs[0].InFlightRedemptions == 0
		}, 30*time.Second, 200*time.Millisecond, "%+v", rep)
		require.Zero(t, rep.Pairs[0].Difference, "%+v", rep.Pairs[0])
		require.Equal(t, side.escrow, rep.Pairs[0].EscrowUnits, "%+v", rep.Pairs[0])
		require.Equal(t, side.escrow, rep.Pairs[0].WrappedUnits, "%+v", rep.Pairs[0])
	}
}
