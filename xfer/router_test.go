package xfer

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/apperr"
)

// fakePeer answers home lookups: claims lists the accounts it says it has;
// down makes it fail.
type fakePeer struct {
	mu     sync.Mutex
	claims map[string]bool
	down   bool
}

func (f *fakePeer) set(account string, claim bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.claims[account] = claim
}

func (f *fakePeer) setDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
}

func (f *fakePeer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		http.Error(w, `{"error":{"code":"unavailable","message":"down"}}`, http.StatusServiceUnavailable)
		return
	}
	account := strings.TrimPrefix(r.URL.Path, PathAccounts)
	w.Header().Set("Content-Type", "application/json")
	if f.claims[account] {
		_, _ = w.Write([]byte(`{"exists":true}`))
		return
	}
	_, _ = w.Write([]byte(`{"exists":false}`))
}

// TestRouterRefusesAnAccountClaimedTwice: one claim routes; two claims are
// an error naming both registries, logged at error and counted, never
// resolved by the registries' order and never cached; once the conflict is
// resolved the account routes again.
func TestRouterRefusesAnAccountClaimedTwice(t *testing.T) {
	t.Parallel()
	dir := NewDirectory()
	peers := map[string]*fakePeer{}
	for _, reg := range []string{"op-a", "op-b", "op-c"} {
		f := &fakePeer{claims: map[string]bool{}}
		srv := httptest.NewServer(f)
		t.Cleanup(srv.Close)
		peers[reg] = f
		dir.Set(Peer{Registry: reg, BaseURL: srv.URL})
	}
	var logs bytes.Buffer
	m := NewMetrics(nil)
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	r := &Router{Client: &Client{Peers: dir, HTTP: http.DefaultClient}, TTL: time.Minute, Now: func() time.Time { return now },
		Log: slog.New(slog.NewTextHandler(&logs, nil)), Metrics: m}
	ctx := context.Background()

	peers["op-b"].set("did:x", true)
	home, err := r.Home(ctx, "did:x")
	require.NoError(t, err)
	require.Equal(t, "op-b", home)

	peers["op-a"].set("did:y", true)
	peers["op-c"].set("did:y", true)
	for range 2 {
		_, err = r.Home(ctx, "did:y")
		require.Equal(t, apperr.AmbiguousHome, apperr.CodeOf(err), "%v", err)
		require.Contains(t, apperr.MessageOf(err), "did:y is claimed by registries op-a, op-c")
	}
	require.Equal(t, 2.0, testutil.ToFloat64(m.homeConflicts), "asked again each time: a conflict is not cached")
	require.Contains(t, logs.String(), "level=ERROR")
	require.Contains(t, logs.String(), "did:y")

	// The operator removes the stray claim: the account routes again.
	peers["op-a"].set("did:y", false)
	home, err = r.Home(ctx, "did:y")
	require.NoError(t, err)
	require.Equal(t, "op-c", home)
	require.Equal(t, 2.0, testutil.ToFloat64(m.homeConflicts))

	// With a peer down, a single claim routes but is remembered only
	// briefly: the peer that was down may claim the account too.
	peers["op-b"].setDown(true)
	peers["op-c"].set("did:z", true)
	home, err = r.Home(ctx, "did:z")
	require.NoError(t, err)
	require.Equal(t, "op-c", home)
	peers["op-b"].setDown(false)
	peers["op-b"].set("did:z", true)
	now = now.Add(7 * time.Second) // past TTL/10, within TTL
	_, err = r.Home(ctx, "did:z")
	require.Equal(t, apperr.AmbiguousHome, apperr.CodeOf(err), "%v", err)
	require.Equal(t, 3.0, testutil.ToFloat64(m.homeConflicts))
}
