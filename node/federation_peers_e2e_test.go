package node_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/registrystore"
	"github.com/theprotocol-dev/theprotocol/events"
)

type peerView struct {
	Registry  string `json:"registry"`
	SpiffeID  string `json:"spiffe_id"`
	Status    string `json:"status"`
	ChangedBy string `json:"changed_by"`
	Reason    string `json:"reason"`
}

func (p *xferPair) peerStatus(registry string) string {
	p.t.Helper()
	var out struct {
		Peers []peerView `json:"peers"`
	}
	require.Equal(p.t, 200, p.c.call("GET", "/api/v1/federation/peers", "", nil, &out))
	for _, v := range out.Peers {
		if v.Registry == registry {
			return v.Status
		}
	}
	return "none"
}

// refused: a payment from alice to bob (bob lives on dst) finds no route
// and moves nothing, and dst's calls to src's participant API are refused.
func (p *xferPair) assertCutOff() {
	p.t.Helper()
	before, _ := balance(p.t, p.src, p.alice)
	require.Equal(p.t, 404, p.c.call("POST", "/api/v1/transfers", p.aliceTok, map[string]any{"to": p.bob, "amount_units": avt}, nil))
	after, _ := balance(p.t, p.src, p.alice)
	require.Equal(p.t, before, after, "no money moves")
	_, err := p.dst.Xfer.Client.Decisions(context.Background(), p.srcReg.ID, []uuid.UUID{uuid.New()})
	require.ErrorContains(p.t, err, string(apperr.PeerNotAdmitted), "src's participant refuses dst")
}

// TestPeerLicenceRevocable: an admin licenses a peer by its mTLS URL (its
// identity is the SVID it presents), lists it, suspends it — refused at
// once, both ways, no money moves — reinstates it, and revokes it; a
// change made by another process of the registry (straight in the
// database, with its notification) takes effect on this one without a
// restart; a restart and a re-add from the topology keep the revocation;
// the registry keeps working alone; bad input is 4xx. Each decision is an
// event with who and why.
func TestPeerLicenceRevocable(t *testing.T) {
	p := startXferPair(t)
	ctx := context.Background()
	require.Equal(t, "active", p.peerStatus(p.dstReg.ID))

	// Add by URL: the peer is who its SVID says.
	var v peerView
	require.Equal(t, 201, p.c.call("POST", "/api/v1/admin/federation/peers", p.admin,
		map[string]any{"base_url": p.dst.MTLSURL(), "reason": "licensed"}, &v))
	require.Equal(t, p.dstReg.ID, v.Registry)
	require.Equal(t, "active", v.Status)
	for _, tc := range []struct {
		name, path string
		body       map[string]any
		want       int
	}{
		{"not https", "/api/v1/admin/federation/peers", map[string]any{"base_url": "http://127.0.0.1:1", "reason": "r"}, 400},
		{"a path", "/api/v1/admin/federation/peers", map[string]any{"base_url": p.dst.MTLSURL() + "/x", "reason": "r"}, 400},
		{"itself", "/api/v1/admin/federation/peers", map[string]any{"base_url": p.src.MTLSURL(), "reason": "r"}, 400},
		{"no reason", "/api/v1/admin/federation/peers", map[string]any{"base_url": p.dst.MTLSURL()}, 400},
		{"unreachable", "/api/v1/admin/federation/peers", map[string]any{"base_url": "https://127.0.0.1:1", "reason": "r"}, 503},
		{"unknown peer", "/api/v1/admin/federation/peers/nobody/suspend", map[string]any{"reason": "r"}, 404},
		{"malformed peer", "/api/v1/admin/federation/peers/Bad%20Id/suspend", map[string]any{"reason": "r"}, 400},
		{"suspend without reason", "/api/v1/admin/federation/peers/" + p.dstReg.ID + "/suspend", map[string]any{}, 400},
		{"reinstate an active peer", "/api/v1/admin/federation/peers/" + p.dstReg.ID + "/reinstate", map[string]any{"reason": "r"}, 422},
	} {
		require.Equal(t, tc.want, p.c.call("POST", tc.path, p.admin, tc.body, nil), tc.name)
	}
	require.Equal(t, 403, p.c.call("POST", "/api/v1/admin/federation/peers/"+p.dstReg.ID+"/suspend", p.aliceTok, map[string]any{"reason": "r"}, nil))
	require.Equal(t, "active", p.peerStatus(p.dstReg.ID), "refusals change nothing")

	// Suspended: refused at once, both ways.
	require.Equal(t, 200, p.c.call("POST", "/api/v1/admin/federation/peers/"+p.dstReg.ID+"/suspend", p.admin, map[string]any{"reason": "audit pending"}, &v))
	require.Equal(t, "suspended", v.Status)
	require.Equal(t, "audit pending", v.Reason)
	require.NotEmpty(t, v.ChangedBy)
	p.assertCutOff()

	// Reinstated: paid again.
	require.Equal(t, 200, p.c.call("POST", "/api/v1/admin/federation/peers/"+p.dstReg.ID+"/reinstate", p.admin, map[string]any{"reason": "audit passed"}, nil))
	x := p.send(p.bob, avt)
	p.waitStatus(x.ID, "committed", 60*time.Second)

	// Another process of the registry suspends it: this one follows through
	// the notification, without a restart.
	peers := registrystore.NewPeers(p.src.Pools[db.RoleRegistry])
	_, _, err := peers.SetStatus(ctx, registrystore.PeerChange{SpiffeID: v.SpiffeID, From: []string{"active"}, To: "suspended",
		By: "other-process", Reason: "suspended elsewhere", Now: time.Now()}, nil)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := p.dst.Xfer.Client.Decisions(ctx, p.srcReg.ID, []uuid.UUID{uuid.New()})
		return err != nil && strings.Contains(err.Error(), string(apperr.PeerNotAdmitted))
	}, 20*time.Second, 50*time.Millisecond, "the other process's suspension reaches this one")
	p.assertCutOff()

	// Revoked: final, and a restart and the topology keep it so.
	require.Equal(t, 200, p.c.call("POST", "/api/v1/admin/federation/peers/"+p.dstReg.ID+"/revoke", p.admin, map[string]any{"reason": "licence withdrawn"}, &v))
	require.Equal(t, "revoked", v.Status)
	p.assertCutOff()
	require.Equal(t, 422, p.c.call("POST", "/api/v1/admin/federation/peers/"+p.dstReg.ID+"/reinstate", p.admin, map[string]any{"reason": "r"}, nil))
	p.restartSrc()
	require.Equal(t, apperr.FailedPrecondition, apperr.CodeOf(p.src.ConnectPeer(ctx, p.dstReg.ID, p.dst.MTLSURL())), "a re-add does not undo a revocation")
	require.Equal(t, 422, p.c.call("POST", "/api/v1/admin/federation/peers", p.admin, map[string]any{"base_url": p.dst.MTLSURL(), "reason": "again"}, nil))
	require.Equal(t, "revoked", p.peerStatus(p.dstReg.ID))
	p.assertCutOff()

	// Alone, the registry still works.
	require.Equal(t, 201, p.c.call("POST", "/api/v1/admin/grants", p.admin, map[string]any{"to": p.alice, "amount": "1", "reason": "standalone"}, nil))

	// Each decision is an event of the registry, with who and why.
	var n int
	require.NoError(t, p.src.Pools[db.RoleRegistry].QueryRow(ctx,
		`SELECT count(*) FROM outbox WHERE envelope->>'type' = $1`, events.TypeFederationPeerStatusChanged).Scan(&n))
	require.Eventually(t, func() bool {
		var ingested int
		require.NoError(t, p.src.Pools[db.RoleEventStore].QueryRow(ctx, `SELECT count(*) FROM events WHERE event_type = $1 AND registry = $2`,
			events.TypeFederationPeerStatusChanged, p.srcReg.ID).Scan(&ingested))
		return ingested == 4
	}, 60*time.Second, 100*time.Millisecond, "the decisions reach the frame's EventStore")
	require.Equal(t, 4, n, "add, suspend, reinstate, revoke (the test's own database write emitted none; refusals none)")
}
