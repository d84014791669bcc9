package federation_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/federation"
	"github.com/theprotocol-dev/theprotocol/identity"
)

var frameTD = spiffeid.RequireTrustDomainFromString("line.theprotocol.test")

// signer signs listings as the TEG of a registry of the test frame.
func signer(t *testing.T, ca *identity.CA, registry string) func(federation.PeerListing) federation.SignedListing {
	t.Helper()
	svid, err := ca.Issue(spiffeid.RequireFromPath(frameTD, "/teg/"+registry), time.Hour)
	require.NoError(t, err)
	return func(l federation.PeerListing) federation.SignedListing {
		s, err := federation.SignListing(svid, l)
		require.NoError(t, err)
		return s
	}
}

// TestListingSignature: a listing verifies only as its signer's, unaltered,
// fresh, from the frame's CA.
func TestListingSignature(t *testing.T) {
	t.Parallel()
	ca, err := identity.NewEphemeralCA(frameTD, identity.CAOptions{})
	require.NoError(t, err)
	other, err := identity.NewEphemeralCA(frameTD, identity.CAOptions{}) // same name, another key: not the frame's
	require.NoError(t, err)
	now := time.Now().UTC()
	l := federation.PeerListing{Registry: "b", TrustDomain: frameTD.Name(), IssuedAt: now,
		Peers: []federation.ListedPeer{{Registry: "a", BaseURL: "https://127.0.0.1:1001"}, {Registry: "c", BaseURL: "https://127.0.0.1:1003"}}}
	good := signer(t, ca, "b")(l)
	got, err := federation.VerifyListing(good, ca.X509Bundle(), frameTD, "b", now)
	require.NoError(t, err)
	require.Equal(t, l.Peers, got.Peers)

	tampered := good
	tampered.Payload = []byte(strings.Replace(string(good.Payload), "1003", "6666", 1))
	stale := l
	stale.IssuedAt = now.Add(-federation.MaxListingAge - time.Minute)
	badPeer := l
	badPeer.Peers = []federation.ListedPeer{{Registry: "c", BaseURL: "http://plain"}}
	for name, tc := range map[string]struct {
		s        federation.SignedListing
		registry string
	}{
		"a relay altered it":          {tampered, "b"},
		"signed by another registry":  {signer(t, ca, "c")(l), "b"},
		"stating another registry":    {signer(t, ca, "c")(l), "c"},
		"signed by a foreign CA":      {signer(t, other, "b")(l), "b"},
		"stale":                       {signer(t, ca, "b")(stale), "b"},
		"a peer without an https URL": {signer(t, ca, "b")(badPeer), "b"},
		"no signature":                {federation.SignedListing{Payload: good.Payload, Chain: good.Chain}, "b"},
		"no certificate":              {federation.SignedListing{Payload: good.Payload, Signature: good.Signature}, "b"},
		"garbage certificate":         {federation.SignedListing{Payload: good.Payload, Signature: good.Signature, Chain: [][]byte{[]byte("x")}}, "b"},
	} {
		_, err := federation.VerifyListing(tc.s, ca.X509Bundle(), frameTD, tc.registry, now)
		require.Equal(t, apperr.Invalid, apperr.CodeOf(err), "%s: %v", name, err)
	}
}

// lineNet is a fake frame: registries a..e in a line, each listing its
// neighbours, each listing signed by its own TEG.
type lineNet struct {
	t       *testing.T
	ca      *identity.CA
	mu      sync.Mutex
	peers   map[string][]string
	down    map[string]bool
	forged  map[string]bool // signed by another registry
	fetched map[string]int
}

func newLineNet(t *testing.T, ids ...string) *lineNet {
	ca, err := identity.NewEphemeralCA(frameTD, identity.CAOptions{})
	require.NoError(t, err)
	n := &lineNet{t: t, ca: ca, peers: map[string][]string{}, down: map[string]bool{}, forged: map[string]bool{}, fetched: map[string]int{}}
	for i, id := range ids {
		if i > 0 {
			n.peers[id] = append(n.peers[id], ids[i-1])
		}
		if i < len(ids)-1 {
			n.peers[id] = append(n.peers[id], ids[i+1])
		}
	}
	return n
}

func url(reg string) string { return "https://" + reg + ".test:443" }

func (n *lineNet) fetch(_ context.Context, registry, baseURL string) (federation.PeerListing, federation.SignedListing, error) {
	n.mu.Lock()
	n.fetched[registry]++
	down, forged, ps := n.down[registry], n.forged[registry], n.peers[registry]
	n.mu.Unlock()
	if down || baseURL != url(registry) {
		return federation.PeerListing{}, federation.SignedListing{}, errors.New("unreachable")
	}
	l := federation.PeerListing{Registry: registry, TrustDomain: frameTD.Name(), IssuedAt: time.Now().UTC()}
	for _, p := range ps {
		l.Peers = append(l.Peers, federation.ListedPeer{Registry: p, BaseURL: url(p)})
	}
	by := registry
	if forged {
		by = "x"
	}
	s := signer(n.t, n.ca, by)(l)
	got, err := federation.VerifyListing(s, n.ca.X509Bundle(), frameTD, registry, time.Now())
	return got, s, err
}

func (n *lineNet) discovery(depth int, direct *[]string, changes *int) *federation.Discovery {
	return &federation.Discovery{Self: "a", Depth: depth, Fetch: n.fetch,
		Direct: func() []federation.DirectPeer {
			var out []federation.DirectPeer
			for _, d := range *direct {
				out = append(out, federation.DirectPeer{Registry: d, BaseURL: url(d)})
			}
			return out
		},
		OnChange: func() { *changes++ }}
}

func regs(t federation.Topology) []string {
	out := []string{}
	for _, e := range t.Registries {
		out = append(out, e.Registry)
	}
	return out
}

// TestDiscoveryLine: on a line a-b-c-d-e, a walk from a reaches e at depth
// 4 with the chain of attestations, but not at depth 3 (and e is never
// even asked then); a registry that does not answer ends the path once
// its last listing is stale, one whose listing does not verify at once;
// losing the
// direct peer empties the set at once, without the network.
func TestDiscoveryLine(t *testing.T) {
	t.Parallel()
	n := newLineNet(t, "a", "b", "c", "d", "e")
	direct, changes := []string{"b"}, 0
	d := n.discovery(4, &direct, &changes)
	clock := time.Now()
	d.Now = func() time.Time { return clock }
	top := d.Run(context.Background())
	require.Equal(t, []string{"b", "c", "d", "e"}, regs(top))
	e := top.Registries[3]
	require.Equal(t, 4, e.Depth)
	require.Equal(t, []string{"a", "b", "c", "d", "e"}, e.Chain)
	require.Len(t, e.Attestations, 4)
	for i, at := range e.Attestations {
		require.Equal(t, e.Chain[i+1], at.Registry)
		require.Len(t, at.Digest, 64)
	}
	require.True(t, d.Trusted("e"))
	u, ok := d.Lookup("e")
	require.True(t, ok)
	require.Equal(t, url("e"), u)
	_, ok = d.Lookup("b")
	require.False(t, ok, "a direct peer is routed through the directory, not the discovery")
	require.Equal(t, 1, changes)

	// Depth 3: e is neither reached nor asked.
	n3 := newLineNet(t, "a", "b", "c", "d", "e")
	d3 := n3.discovery(3, &direct, new(int))
	require.Equal(t, []string{"b", "c", "d"}, regs(d3.Run(context.Background())))
	require.False(t, d3.Trusted("e"))
	require.Zero(t, n3.fetched["e"])

	// c does not answer: walked through on its last listing while that
	// is fresh, then no longer.
	n.mu.Lock()
	n.down["c"] = true
	n.mu.Unlock()
	require.Equal(t, []string{"b", "c", "d", "e"}, regs(d.Run(context.Background())))
	clock = clock.Add(federation.MaxListingAge + time.Minute)
	require.Equal(t, []string{"b"}, regs(d.Run(context.Background())))
	clock = time.Now()
	n.mu.Lock()
	n.down["c"] = false
	n.mu.Unlock()
	require.Equal(t, []string{"b", "c", "d", "e"}, regs(d.Run(context.Background())))
	// c's listing stops verifying: dropped at once.
	n.mu.Lock()
	n.forged["c"] = true
	n.mu.Unlock()
	require.Equal(t, []string{"b"}, regs(d.Run(context.Background())))
	n.mu.Lock()
	n.forged["c"] = false
	n.mu.Unlock()
	require.Equal(t, []string{"b", "c", "d", "e"}, regs(d.Run(context.Background())))

	// c revokes b (b still lists c): the edge is cut at c's end.
	n.mu.Lock()
	n.peers["c"] = []string{"d"}
	n.mu.Unlock()
	require.Equal(t, []string{"b"}, regs(d.Run(context.Background())))
	n.mu.Lock()
	n.peers["c"] = []string{"b", "d"}
	n.mu.Unlock()
	d.Run(context.Background())

	// a revokes b: everything goes at once, from the listings held.
	before := n.fetched["b"]
	changes = 0
	direct = nil
	require.Empty(t, regs(d.Recompute()))
	require.False(t, d.Trusted("e"))
	_, ok = d.Lookup("e")
	require.False(t, ok)
	require.Equal(t, 1, changes)
	require.Equal(t, before, n.fetched["b"], "no network")
}
