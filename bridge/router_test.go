package bridge

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/apperr"
)

const routedDID = "did:theprotocol:0b4e1f7c-5c1e-4d8e-9a55-3f0f6b0c2a11"

// peerFrame serves PathAccount: has says whether the DID lives there,
// nil answers 503.
func peerFrame(t *testing.T, has *bool, asked *atomic.Int32) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		if r.URL.Path != PathAccount {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		if has == nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_ = json.NewEncoder(w).Encode(AccountAnswer{Exists: *has})
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// The home of a receiver is the one peer frame that claims it; two
// claims are a conflict, no claim while a frame did not answer is
// retryable, no claim at all is no home; a found home is remembered.
func TestRouterHome(t *testing.T) {
	yes, no := true, false
	for _, tc := range []struct {
		name        string
		beta, gamma *bool
		home        string
		code        apperr.Code
	}{
		{"one claim", &yes, &no, "beta", ""},
		{"no claim", &no, &no, "", ""},
		{"two claims", &yes, &yes, "", apperr.AmbiguousHome},
		{"no claim, one frame silent", &no, nil, "", apperr.Unavailable},
		{"a claim, the other frame silent", nil, &yes, "gamma", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var asked atomic.Int32
			dir := NewDirectory()
			for _, p := range []struct {
				frame string
				has   *bool
			}{{"beta", tc.beta}, {"gamma", tc.gamma}} {
				td := spiffeid.RequireTrustDomainFromString(p.frame + ".test")
				dir.Set(Peer{Frame: p.frame, TrustDomain: td, TEG: spiffeid.RequireFromPath(td, "/teg/main"), BaseURL: peerFrame(t, p.has, &asked)})
			}
			r := &Router{Client: &Client{Peers: dir, HTTP: http.DefaultClient}}
			home, err := r.Home(t.Context(), routedDID)
			require.Equal(t, tc.code, apperr.CodeOf(err), "%v", err)
			require.Equal(t, tc.home, home)
			require.EqualValues(t, 2, asked.Load())
			_, _ = r.Home(t.Context(), routedDID)
			if tc.home != "" {
				require.EqualValues(t, 2, asked.Load(), "a found home is remembered")
			} else {
				require.EqualValues(t, 4, asked.Load(), "a miss is asked again")
			}
		})
	}
	// Not a user account: never asked.
	r := &Router{Client: &Client{Peers: NewDirectory(), HTTP: http.DefaultClient}}
	home, err := r.Home(t.Context(), "treasury")
	require.NoError(t, err)
	require.Empty(t, home)
}
