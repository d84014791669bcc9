package bridge

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math/rand"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/activities"
)

func testDirectory() *Directory {
	d := NewDirectory()
	td := spiffeid.RequireTrustDomainFromString("beta.test")
	d.Set(Peer{Frame: "beta", TrustDomain: td, TEG: spiffeid.RequireFromPath(td, "/teg/beta-main")})
	return d
}

func TestAdmitCaller(t *testing.T) {
	own := spiffeid.RequireTrustDomainFromString("alpha.test")
	dir := testDirectory()
	for _, c := range []struct {
		caller, frame, refusal string
	}{
		{"spiffe://beta.test/teg/beta-main", "beta", ""},
		{"spiffe://alpha.test/teg/alpha-main", "", RefusedSameFrame},
		{"spiffe://alpha.test/teg/alpha-op1", "", RefusedSameFrame},
		{"spiffe://beta.test/teg/beta-op1", "", RefusedNotMainTEG},
		{"spiffe://beta.test/registry/beta-main", "", RefusedNotMainTEG},
		{"spiffe://gamma.test/teg/beta-main", "", RefusedUnknownFrame},
	} {
		frame, refusal := AdmitCaller(own, spiffeid.RequireFromString(c.caller), dir)
		require.Equal(t, c.frame, frame, c.caller)
		require.Equal(t, c.refusal, refusal, c.caller)
	}
}

// Only the configured mainframe TEG of a peer frame is ever admitted, and
// it is admitted as that frame.
func TestAdmitCallerProperty(t *testing.T) {
	own := spiffeid.RequireTrustDomainFromString("alpha.test")
	dir := testDirectory()
	tds := []string{"alpha.test", "beta.test", "gamma.test"}
	paths := []string{"/teg/beta-main", "/teg/alpha-main", "/teg/x", "/registry/beta-main", "/eventstore", "/teg/beta-main/x"}
	rng := rand.New(rand.NewSource(1))
	for range 2000 {
		id := spiffeid.RequireFromPath(spiffeid.RequireTrustDomainFromString(tds[rng.Intn(len(tds))]), paths[rng.Intn(len(paths))])
		frame, refusal := AdmitCaller(own, id, dir)
		if id.String() == "spiffe://beta.test/teg/beta-main" {
			require.Equal(t, "beta", frame)
			require.Empty(t, refusal)
		} else {
			require.Empty(t, frame, id.String())
			require.NotEmpty(t, refusal, id.String())
		}
	}
}

func TestAnswerClassification(t *testing.T) {
	dial := &url.Error{Op: "Post", URL: "https://x", Err: &net.OpError{Op: "dial", Err: fmt.Errorf("refused")}}
	read := &url.Error{Op: "Post", URL: "https://x", Err: &net.OpError{Op: "read", Err: fmt.Errorf("reset")}}
	for _, c := range []struct {
		name string
		out  ApplyAnswer
		err  error
		want string
	}{
		{"applied", ApplyAnswer{Status: "applied"}, nil, activities.BridgeApplied},
		{"rejected", ApplyAnswer{Status: "rejected"}, nil, activities.BridgeRefused},
		{"fenced", ApplyAnswer{Status: "fenced"}, nil, activities.BridgeRefused},
		{"odd status", ApplyAnswer{Status: "maybe"}, nil, activities.BridgeUnknown},
		{"never dialled", ApplyAnswer{}, fmt.Errorf("x: %w", errUndelivered), activities.BridgeUndelivered},
		{"forbidden", ApplyAnswer{}, &remoteError{Status: 403}, activities.BridgeRefused},
		{"bad request", ApplyAnswer{}, &remoteError{Status: 400}, activities.BridgeRefused},
		{"conflict", ApplyAnswer{}, &remoteError{Status: 409}, activities.BridgeUnknown},
		{"server error", ApplyAnswer{}, &remoteError{Status: 503}, activities.BridgeUnknown},
		{"reset after sending", ApplyAnswer{}, read, activities.BridgeUnknown},
	} {
		require.Equal(t, c.want, answer(c.out, c.err).Outcome, c.name)
	}
	require.True(t, neverSent(dial))
	require.False(t, neverSent(read))
}

// A caller the listener admitted (its trust domain is pinned) whose frame
// the directory does not hold yet is told to retry, not refused: a
// refusal would make it refund an operation it may still deliver. The
// other refusals stay definitive.
func TestParticipantNotYetConnectedFrameIsRetryable(t *testing.T) {
	p := &Participant{TrustDomain: spiffeid.RequireTrustDomainFromString("alpha.test"), Peers: testDirectory()}
	mux := http.NewServeMux()
	p.Register(mux)
	call := func(caller string) int {
		u, err := url.Parse(caller)
		require.NoError(t, err)
		req := httptest.NewRequest(http.MethodPost, PathApply, strings.NewReader(`{}`))
		req.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{{URIs: []*url.URL{u}}}}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		return rec.Code
	}
	require.Equal(t, http.StatusServiceUnavailable, call("spiffe://gamma.test/teg/gamma-main"))
	require.Equal(t, http.StatusForbidden, call("spiffe://beta.test/teg/beta-op1"))
	require.Equal(t, http.StatusForbidden, call("spiffe://alpha.test/teg/alpha-main"))
	require.Equal(t, activities.BridgeUnknown, answer(ApplyAnswer{}, &remoteError{Status: http.StatusServiceUnavailable}).Outcome)
}
