package xfer

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/identity"
	"github.com/theprotocol-dev/theprotocol/xfer/xferstate"
)

var (
	ownTD   = spiffeid.RequireTrustDomainFromString("alpha.theprotocol.test")
	otherTD = spiffeid.RequireTrustDomainFromString("beta.theprotocol.test")
)

func TestAdmitCaller(t *testing.T) {
	t.Parallel()
	peer := spiffeid.RequireFromPath(ownTD, "/teg/op1")
	// The peer set holds a local TEG, a foreign TEG with the same registry
	// name (federated for another purpose), a local registry identity and
	// a foreign TEG.
	set := identity.NewMemPeerSet(peer,
		spiffeid.RequireFromPath(otherTD, "/teg/op1"),
		spiffeid.RequireFromPath(ownTD, "/registry/op1"),
		spiffeid.RequireFromPath(otherTD, "/teg/op9"))
	for _, c := range []struct {
		name    string
		own     spiffeid.TrustDomain
		caller  string
		allowed PeerAllowed
		reg     string
		refusal string
	}{
		{"peer TEG", ownTD, "spiffe://alpha.theprotocol.test/teg/op1", set.Allowed, "op1", ""},
		{"same name, other trust domain", ownTD, "spiffe://beta.theprotocol.test/teg/op1", set.Allowed, "", RefusedForeignTrustDomain},
		{"foreign peer TEG", ownTD, "spiffe://beta.theprotocol.test/teg/op9", set.Allowed, "", RefusedForeignTrustDomain},
		{"registry identity in the peer set", ownTD, "spiffe://alpha.theprotocol.test/registry/op1", set.Allowed, "", RefusedNotTEG},
		{"nested path", ownTD, "spiffe://alpha.theprotocol.test/teg/op1/x", set.Allowed, "", RefusedNotTEG},
		{"workload of the trust domain", ownTD, "spiffe://alpha.theprotocol.test/eventstore", set.Allowed, "", RefusedNotTEG},
		{"TEG not in the peer set", ownTD, "spiffe://alpha.theprotocol.test/teg/op2", set.Allowed, "", RefusedNotPeer},
		{"no peer set", ownTD, "spiffe://alpha.theprotocol.test/teg/op1", nil, "", RefusedNotPeer},
		{"no own trust domain", spiffeid.TrustDomain{}, "spiffe://alpha.theprotocol.test/teg/op1", set.Allowed, "", RefusedForeignTrustDomain},
	} {
		id := spiffeid.RequireFromString(c.caller)
		reg, refusal := AdmitCaller(c.own, id, c.allowed)
		require.Equal(t, c.reg, reg, c.name)
		require.Equal(t, c.refusal, refusal, c.name)
		err := AuthorizePeerTEG(c.own, c.allowed)(id, nil)
		require.Equal(t, c.refusal == "", err == nil, "%s: client-side authorizer %v", c.name, err)
	}
}

// fakeStore records what reaches the participant's store.
type fakeStore struct{ calls int }

func (f *fakeStore) PrepareXfers(_ context.Context, _ string, items []ledgerstore.XferPrepareItem) ([]ledgerstore.XferPrepareResult, error) {
	f.calls++
	return nil, nil
}

func (f *fakeStore) CommitXfers(_ context.Context, source string, items []ledgerstore.XferPrepareItem) ([]ledgerstore.XferPrepareResult, error) {
	f.calls++
	if source == "capped" {
		return nil, apperr.New(apperr.ExposureCapExceeded, "committing 1 transfer(s) from capped would pass its cap")
	}
	out := make([]ledgerstore.XferPrepareResult, len(items))
	for i, it := range items {
		out[i] = ledgerstore.XferPrepareResult{ID: it.ID, Status: xferstate.Committed}
	}
	return out, nil
}

func (f *fakeStore) AbortXfers(context.Context, string, []uuid.UUID) ([]ledgerstore.XferPrepareResult, error) {
	f.calls++
	return nil, nil
}

func (f *fakeStore) XferStatuses(context.Context, []uuid.UUID) (map[uuid.UUID]ledgerstore.Xfer, error) {
	f.calls++
	return nil, nil
}

func (f *fakeStore) AccountExists(context.Context, string) (bool, error) {
	f.calls++
	return false, nil
}

// TestParticipantAdmitsOnlyPeerTEGsOfItsTrustDomain calls the handlers
// with verified client certificates of both trust domains (the TLS layer
// admitted them: the foreign one is a federated peer): only the local peer
// TEG reaches the store; the others get 403 peer_not_admitted, counted by
// reason. A commit the store refuses for the cap answers 422.
func TestParticipantAdmitsOnlyPeerTEGsOfItsTrustDomain(t *testing.T) {
	t.Parallel()
	own, err := identity.NewEphemeralCA(ownTD, identity.CAOptions{})
	require.NoError(t, err)
	other, err := identity.NewEphemeralCA(otherTD, identity.CAOptions{})
	require.NoError(t, err)
	cert := func(ca *identity.CA, path string) *x509.Certificate {
		svid, err := ca.Issue(spiffeid.RequireFromPath(ca.TrustDomain(), path), time.Hour)
		require.NoError(t, err)
		return svid.Certificates[0]
	}
	set := identity.NewMemPeerSet(
		spiffeid.RequireFromPath(ownTD, "/teg/op1"), spiffeid.RequireFromPath(ownTD, "/teg/capped"),
		spiffeid.RequireFromPath(otherTD, "/teg/op1"))
	store := &fakeStore{}
	reg := prometheus.NewPedanticRegistry()
	m := NewMetrics(reg)
	p := &Participant{Store: store, TrustDomain: ownTD, Allowed: set.Allowed, Metrics: m}
	mux := http.NewServeMux()
	p.Register(mux)
	call := func(c *x509.Certificate) (int, string) {
		body := `{"transfers":[{"id":"` + uuid.NewString() + `","from":"did:theprotocol:a","to":"did:theprotocol:b","amount_units":1000}]}`
		req := httptest.NewRequest(http.MethodPost, PathCommit, strings.NewReader(body))
		if c != nil {
			req.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{c}}
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		var eb struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		_ = json.Unmarshal(rec.Body.Bytes(), &eb)
		return rec.Code, eb.Error.Code + ": " + eb.Error.Message
	}

	status, msg := call(cert(other, "/teg/op1"))
	require.Equal(t, http.StatusForbidden, status)
	require.Contains(t, msg, "peer_not_admitted: spiffe://beta.theprotocol.test/teg/op1 is not admitted")
	require.Contains(t, msg, `trust domain "alpha.theprotocol.test"`)
	status, msg = call(cert(own, "/registry/op1"))
	require.Equal(t, http.StatusForbidden, status)
	require.Contains(t, msg, "only TEG identities")
	status, _ = call(cert(own, "/teg/op2"))
	require.Equal(t, http.StatusForbidden, status)
	status, _ = call(nil)
	require.Equal(t, http.StatusUnauthorized, status)
	require.Zero(t, store.calls, "no refused caller reached the store")
	require.Equal(t, 1.0, testutil.ToFloat64(m.refused.WithLabelValues(RefusedForeignTrustDomain)))
	require.Equal(t, 1.0, testutil.ToFloat64(m.refused.WithLabelValues(RefusedNotTEG)))
	require.Equal(t, 1.0, testutil.ToFloat64(m.refused.WithLabelValues(RefusedNotPeer)))

	status, _ = call(cert(own, "/teg/op1"))
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, 1, store.calls)
	status, msg = call(cert(own, "/teg/capped"))
	require.Equal(t, http.StatusUnprocessableEntity, status)
	require.Contains(t, msg, "exposure_cap_exceeded: ")
	require.True(t, IsRejection(&remoteError{Status: status, Code: apperr.ExposureCapExceeded}), "a definite refusal for the coordinator")
}
