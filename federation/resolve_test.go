package federation_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/federation"
)

type fakeRouter struct {
	home string
	err  error
	asks int
}

func (f *fakeRouter) Home(context.Context, string) (string, error) { f.asks++; return f.home, f.err }

// TestResolve: local accounts answer without asking peers; a conflict
// between claimants is returned as such, never settled; bad input is
// refused before anything is asked.
func TestResolve(t *testing.T) {
	t.Parallel()
	const did = "did:theprotocol:0b4e1f7c-5c1e-4d8e-9a55-3f0f6b0c2a11"
	for _, tc := range []struct {
		name    string
		account string
		local   bool
		router  fakeRouter
		want    string
		code    apperr.Code
		asks    int
	}{
		{name: "local", account: did, local: true, want: "self"},
		{name: "a peer's", account: did, router: fakeRouter{home: "op1"}, want: "op1", asks: 1},
		{name: "a developer wallet on a peer", account: "dev:0b4e1f7c-5c1e-4d8e-9a55-3f0f6b0c2a11", router: fakeRouter{home: "op1"}, want: "op1", asks: 1},
		{name: "nobody's", account: did, code: apperr.NotFound, asks: 1},
		{name: "claimed twice", account: did, router: fakeRouter{err: apperr.New(apperr.AmbiguousHome, "op1, op2")}, code: apperr.AmbiguousHome, asks: 1},
		{name: "peers down", account: did, router: fakeRouter{err: apperr.New(apperr.Unavailable, "down")}, code: apperr.Unavailable, asks: 1},
		{name: "a system account", account: "treasury", code: apperr.Invalid},
		{name: "garbage", account: "did:other:x", code: apperr.Invalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.router
			res := &federation.Resolver{Self: "self", Router: &r,
				Local: func(context.Context, string) (bool, error) { return tc.local, nil }}
			got, err := res.Resolve(context.Background(), tc.account)
			require.Equal(t, tc.code, apperr.CodeOf(err), "%v", err)
			require.Equal(t, tc.asks, r.asks)
			if tc.code == "" {
				require.Equal(t, tc.want, got.Registry)
				require.Equal(t, tc.local, got.Local)
			}
		})
	}
	_, err := (&federation.Resolver{Local: func(context.Context, string) (bool, error) { return false, errors.New("db down") }}).Resolve(context.Background(), did)
	require.Error(t, err)
}

type fakeCards struct {
	origins []string
	err     error
}

func (f fakeCards) Origins(context.Context, string) ([]string, error) { return f.origins, f.err }

// TestResolveCardsFirst: a signed card answers before the graph is asked;
// two cards claiming the account are a conflict, never settled by order;
// a card naming a registry outside the trusted set, or none, falls back
// to the graph.
func TestResolveCardsFirst(t *testing.T) {
	t.Parallel()
	const did = "did:theprotocol:0b4e1f7c-5c1e-4d8e-9a55-3f0f6b0c2a11"
	trusted := func(r string) bool { return r != "stranger" }
	for _, tc := range []struct {
		name  string
		cards fakeCards
		want  string
		code  apperr.Code
		asks  int
	}{
		{name: "a card", cards: fakeCards{origins: []string{"e"}}, want: "e"},
		{name: "the same origin twice", cards: fakeCards{origins: []string{"e", "e"}}, want: "e"},
		{name: "two origins", cards: fakeCards{origins: []string{"e", "c"}}, code: apperr.AmbiguousHome},
		{name: "no card: the graph", want: "graph", asks: 1},
		{name: "an untrusted origin: the graph", cards: fakeCards{origins: []string{"stranger"}}, want: "graph", asks: 1},
		{name: "cards unavailable", cards: fakeCards{err: apperr.New(apperr.Unavailable, "down")}, code: apperr.Unavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := fakeRouter{home: "graph"}
			m := federation.NewDiscoveryMetrics(nil)
			res := &federation.Resolver{Self: "a", Router: &r, Cards: tc.cards, Trusted: trusted, Metrics: m,
				Local: func(context.Context, string) (bool, error) { return false, nil }}
			got, err := res.Resolve(context.Background(), did)
			require.Equal(t, tc.code, apperr.CodeOf(err), "%v", err)
			require.Equal(t, tc.asks, r.asks)
			if tc.code == "" {
				require.Equal(t, tc.want, got.Registry)
			}
			if tc.code == apperr.AmbiguousHome {
				require.Contains(t, err.Error(), "c, e")
			}
		})
	}
}
