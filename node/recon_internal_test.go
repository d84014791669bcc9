package node

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/identity"
	"github.com/theprotocol-dev/theprotocol/ingest"
)

// The audit on the mTLS listener is served to the frame's own workloads
// only: a federated peer of another trust domain (which the listener
// admits for the participant API) and a connection without a client
// certificate are refused before the EventStore is read.
func TestSupplyAuditRefusesOtherTrustDomains(t *testing.T) {
	td := spiffeid.RequireTrustDomainFromString("alpha.theprotocol.test")
	n := &Node{Pools: map[db.Role]*pgxpool.Pool{db.RoleEventStore: new(pgxpool.Pool)}, log: slog.New(slog.DiscardHandler)}
	mux := http.NewServeMux()
	n.attachSupplyAuditTLS(mux, td)

	other, err := identity.NewEphemeralCA(spiffeid.RequireTrustDomainFromString("beta.theprotocol.test"), identity.CAOptions{})
	require.NoError(t, err)
	svid, err := other.Issue(spiffeid.RequireFromPath(other.TrustDomain(), "/teg/beta-main"), time.Minute)
	require.NoError(t, err)
	for name, cs := range map[string]*tls.ConnectionState{
		"another trust domain": {PeerCertificates: svid.Certificates},
		"no client SVID":       {},
		"not TLS":              nil,
	} {
		t.Run(name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, SupplyAuditPath, nil)
			r.TLS = cs
			w := httptest.NewRecorder()
			mux.ServeHTTP(w, r)
			require.Equal(t, http.StatusForbidden, w.Code, w.Body.String())
		})
	}
}

// The remote gate answers a verdict only from a well-formed audit of its
// own frame; anything else is an error (mint refused as unavailable).
func TestRemoteSupplyGate(t *testing.T) {
	var status int
	var body any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(body)
	}))
	defer srv.Close()
	g := &remoteSupplyGate{frame: "alpha", url: srv.URL + SupplyAuditPath}
	ctx := context.Background()

	_, err := g.SupplyVerdict(ctx)
	require.ErrorContains(t, err, "no mTLS identity yet", "before the node's SVID is there")
	g.client.Store(srv.Client())

	status, body = 200, ingest.AuditReport{Frame: "alpha", Delta: 0, Failures: []string{"registry r: liquid/agent differs by 1"}}
	v, err := g.SupplyVerdict(ctx)
	require.NoError(t, err)
	require.False(t, v.Clean())
	require.Equal(t, []string{"registry r: liquid/agent differs by 1"}, v.Failures)

	status, body = 200, ingest.AuditReport{Frame: "alpha", Failures: []string{}, OK: true}
	v, err = g.SupplyVerdict(ctx)
	require.NoError(t, err)
	require.True(t, v.Clean())

	status, body = 200, ingest.AuditReport{Frame: "beta", Failures: []string{}}
	_, err = g.SupplyVerdict(ctx)
	require.ErrorContains(t, err, `answered for frame "beta"`)

	status, body = 503, map[string]string{"error": "down"}
	_, err = g.SupplyVerdict(ctx)
	require.ErrorContains(t, err, "answered 503")

	status, body = 200, "not an audit"
	_, err = g.SupplyVerdict(ctx)
	require.ErrorContains(t, err, "decode the supply audit")

	none := &remoteSupplyGate{err: io.ErrUnexpectedEOF}
	_, err = none.SupplyVerdict(ctx)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF, "a frame without an EventStore to ask refuses")
}
