package federation

import (
	"context"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/federation/reach"
)

// Discovery bounds.
const (
	// DefaultDiscoveryDepth is how many hops the walk goes by default.
	DefaultDiscoveryDepth = 4
	// MaxDiscoveryDepth bounds the configured depth.
	MaxDiscoveryDepth = 8
	// MaxDiscovered bounds the registries one walk fetches: a frame larger
	// than this is cut, not walked without end.
	MaxDiscovered = 256
	// discoveryParallel bounds the listings fetched at once.
	discoveryParallel = 8
)

// DirectPeer is one of this registry's own active peers.
type DirectPeer struct {
	Registry string
	BaseURL  string
}

// Discovery builds this registry's trusted set: from its own active peers,
// a breadth-first walk over the signed peer listings of the registries it
// reaches, at most Depth hops (federation/reach decides which edges
// count). The result is held in memory and consulted per call (mTLS
// admission, routing), so every process of a registry runs its own walk;
// a change of its own licences recomputes the set from the listings
// already verified, at once, without the network.
type Discovery struct {
	Self  string
	Depth int
	// Direct returns this registry's active peers (its route directory).
	Direct func() []DirectPeer
	// Fetch gets registry's signed listing from its mTLS listener at
	// baseURL and verifies it (VerifyListing) and that the listener
	// presented registry's SVID.
	Fetch func(ctx context.Context, registry, baseURL string) (PeerListing, SignedListing, error)
	// OnChange is told when the trusted set changed (the router forgets
	// its cached answers).
	OnChange func()
	Log      *slog.Logger
	Metrics  *DiscoveryMetrics
	Now      func() time.Time

	runMu    sync.Mutex   // one walk at a time
	depthSet atomic.Int64 // SetDepth's bound, 0: Depth

	mu       sync.RWMutex
	listings map[string]verified // from the last walk
	topo     Topology
	ran      time.Time
}

type verified struct {
	listing PeerListing
	signed  SignedListing
	baseURL string
}

// Topology is the trusted set at a time.
type Topology struct {
	Self       string          `json:"self"`
	Depth      int             `json:"depth"`
	WalkedAt   time.Time       `json:"walked_at"`
	Registries []TopologyEntry `json:"registries"`
	byID       map[string]int
}

// TopologyEntry is one trusted registry and how it was reached.
type TopologyEntry struct {
	Registry string `json:"registry"`
	BaseURL  string `json:"base_url,omitempty"`
	Depth    int    `json:"depth"`
	// Chain runs from this registry to the entry.
	Chain []string `json:"chain"`
	// Attestations are the signed listings of every registry of the chain
	// after this one, in order: each lists the previous one and the next.
	// The first hop is this registry's own licence.
	Attestations []ListingAttestation `json:"attestations"`
}

// ListingAttestation identifies one signed listing of a chain.
type ListingAttestation struct {
	Registry string    `json:"registry"`
	IssuedAt time.Time `json:"issued_at"`
	Digest   string    `json:"digest"`
}

// Run walks the graph now and replaces the trusted set with what it finds.
// A registry whose listing does not verify is not walked through (and not
// reached beyond depth 1); one that does not answer is walked through on
// its last verified listing while that is fresh (MaxListingAge), then no
// longer. Both are logged and counted, not errors of the walk.
func (d *Discovery) Run(ctx context.Context) Topology {
	d.runMu.Lock()
	defer d.runMu.Unlock()
	depth := d.depth()
	direct := d.Direct()
	got := map[string]verified{}
	tried := map[string]bool{d.Self: true}
	var todo []DirectPeer
	for _, p := range direct {
		if !tried[p.Registry] {
			tried[p.Registry] = true
			todo = append(todo, p)
		}
	}
	d.fetchAll(ctx, todo, got)
	ids := directIDs(direct)
	for level := 1; level < depth && len(tried) < MaxDiscovered; level++ {
		todo = nil
		for _, r := range reach.Reach(d.Self, ids, listingsOf(got), level) {
			v, ok := got[r.Registry]
			if r.Depth != level || !ok || !slices.ContainsFunc(v.listing.Peers, func(p ListedPeer) bool { return p.Registry == r.Chain[len(r.Chain)-2] }) {
				continue
			}
			for _, p := range v.listing.Peers {
				if !tried[p.Registry] && len(tried) < MaxDiscovered {
					tried[p.Registry] = true
					todo = append(todo, DirectPeer(p))
				}
			}
		}
		if len(todo) == 0 {
			break
		}
		d.fetchAll(ctx, todo, got)
	}
	d.mu.Lock()
	d.listings = got
	d.ran = d.now()
	d.mu.Unlock()
	d.Metrics.run()
	return d.Recompute()
}

// fetchAll fetches and verifies the listings of peers into got.
func (d *Discovery) fetchAll(ctx context.Context, peers []DirectPeer, got map[string]verified) {
	type res struct {
		v   verified
		err error
		reg string
	}
	ch := make(chan res, len(peers))
	sem := make(chan struct{}, discoveryParallel)
	for _, p := range peers {
		go func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			l, s, err := d.Fetch(fctx, p.Registry, p.BaseURL)
			ch <- res{v: verified{listing: l, signed: s, baseURL: p.BaseURL}, err: err, reg: p.Registry}
		}()
	}
	d.mu.RLock()
	prev := d.listings
	d.mu.RUnlock()
	now := d.now()
	for range peers {
		r := <-ch
		if r.err == nil {
			got[r.reg] = r.v
			continue
		}
		d.Metrics.fetchFailed()
		// A registry that did not answer this once keeps the listing it
		// signed last, while that is fresh: a slow moment must not make
		// the trusted set flap. A listing that no longer verifies is
		// dropped at once.
		old, ok := prev[r.reg]
		keep := ok && old.baseURL == r.v.baseURL && !apperr.Is(r.err, apperr.Invalid) && now.Sub(old.listing.IssuedAt) < MaxListingAge
		if keep {
			got[r.reg] = old
		}
		if d.Log != nil {
			d.Log.Warn("peer listing not fetched or not verified", "registry", r.reg, "err", r.err, "kept_previous", keep)
		}
	}
}

// Recompute rebuilds the trusted set from the listings of the last walk
// and the current direct peers: called when this registry's own licences
// change, so a suspended or revoked peer, and whatever was reached only
// through it, leaves the set at once.
func (d *Discovery) Recompute() Topology {
	direct := d.Direct()
	d.mu.Lock()
	rs := reach.Reach(d.Self, directIDs(direct), listingsOf(d.listings), d.depth())
	t := Topology{Self: d.Self, Depth: d.depth(), WalkedAt: d.ran, Registries: make([]TopologyEntry, 0, len(rs)), byID: map[string]int{}}
	urls := map[string]string{}
	for _, p := range direct {
		urls[p.Registry] = p.BaseURL
	}
	for _, r := range rs {
		e := TopologyEntry{Registry: r.Registry, BaseURL: r.BaseURL, Depth: r.Depth, Chain: r.Chain}
		if u := urls[r.Registry]; u != "" {
			e.BaseURL = u
		}
		for _, reg := range r.Chain[1:] {
			if v, ok := d.listings[reg]; ok {
				e.Attestations = append(e.Attestations, ListingAttestation{Registry: reg, IssuedAt: v.listing.IssuedAt, Digest: v.signed.Digest()})
			}
		}
		t.byID[r.Registry] = len(t.Registries)
		t.Registries = append(t.Registries, e)
	}
	changed := !sameSet(d.topo, t)
	d.topo = t
	d.mu.Unlock()
	d.Metrics.set(len(t.Registries))
	if changed && d.OnChange != nil {
		d.OnChange()
	}
	return t
}

// Topology returns the current trusted set.
func (d *Discovery) Topology() Topology {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.topo
}

// Trusted reports whether registry is in the trusted set (reached through
// a chain of active licences).
func (d *Discovery) Trusted(registry string) bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	_, ok := d.topo.byID[registry]
	return ok
}

// Lookup returns the base URL of a registry of the trusted set beyond this
// registry's own peers (depth 2 or more): where a payment to it, or a
// question about an account it holds, goes directly over mTLS.
func (d *Discovery) Lookup(registry string) (string, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	i, ok := d.topo.byID[registry]
	if !ok || d.topo.Registries[i].Depth < 2 || d.topo.Registries[i].BaseURL == "" {
		return "", false
	}
	return d.topo.Registries[i].BaseURL, true
}

// Beyond returns the registries of the trusted set beyond this registry's
// own peers, with their base URLs.
func (d *Discovery) Beyond() []DirectPeer {
	d.mu.RLock()
	defer d.mu.RUnlock()
	var out []DirectPeer
	for _, e := range d.topo.Registries {
		if e.Depth >= 2 && e.BaseURL != "" {
			out = append(out, DirectPeer{Registry: e.Registry, BaseURL: e.BaseURL})
		}
	}
	return out
}

// SetDepth changes the bound from the next walk or recomputation on.
func (d *Discovery) SetDepth(depth int) {
	d.depthSet.Store(int64(max(depth, 1)))
}

func (d *Discovery) depth() int {
	if n := d.depthSet.Load(); n > 0 {
		return min(int(n), MaxDiscoveryDepth)
	}
	if d.Depth <= 0 {
		return DefaultDiscoveryDepth
	}
	return min(d.Depth, MaxDiscoveryDepth)
}

func (d *Discovery) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

func directIDs(ps []DirectPeer) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Registry
	}
	return out
}

func listingsOf(vs map[string]verified) map[string]reach.Listing {
	out := make(map[string]reach.Listing, len(vs))
	for reg, v := range vs {
		ps := make([]string, len(v.listing.Peers))
		for i, p := range v.listing.Peers {
			ps[i] = p.Registry
		}
		out[reg] = reach.Listing{Registry: reg, BaseURL: v.baseURL, Peers: ps}
	}
	return out
}

func sameSet(a, b Topology) bool {
	if len(a.Registries) != len(b.Registries) {
		return false
	}
	as, bs := make([]string, 0, len(a.Registries)), make([]string, 0, len(b.Registries))
	for i := range a.Registries {
		as = append(as, a.Registries[i].Registry+" "+a.Registries[i].BaseURL)
		bs = append(bs, b.Registries[i].Registry+" "+b.Registries[i].BaseURL)
	}
	sort.Strings(as)
	sort.Strings(bs)
	return slices.Equal(as, bs)
}

// DiscoveryMetrics count the walks. A nil *DiscoveryMetrics records
// nothing.
type DiscoveryMetrics struct {
	runs, fetchFailures prometheus.Counter
	reached             prometheus.Gauge
	homeConflicts       *prometheus.CounterVec
}

// NewDiscoveryMetrics creates the metrics and registers them on reg (nil:
// not registered).
func NewDiscoveryMetrics(reg prometheus.Registerer) *DiscoveryMetrics {
	m := &DiscoveryMetrics{
		runs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "federation_discovery_runs_total", Help: "Walks of the federation graph (scheduled and on demand).",
		}),
		fetchFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "federation_discovery_fetch_failures_total",
			Help: "Peer listings that could not be fetched or did not verify (that registry is not walked through).",
		}),
		reached: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "federation_discovery_registries", Help: "Registries in the trusted set (direct peers and those reached through them).",
		}),
		homeConflicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "federation_home_conflicts_total",
			Help: "Resolutions that found an account claimed by more than one registry, by source (cards, graph): refused with 409 until an operator resolves it.",
		}, []string{"source"}),
	}
	if reg != nil {
		reg.MustRegister(m.runs, m.fetchFailures, m.reached, m.homeConflicts)
	}
	return m
}

func (m *DiscoveryMetrics) run() {
	if m != nil {
		m.runs.Inc()
	}
}

func (m *DiscoveryMetrics) fetchFailed() {
	if m != nil {
		m.fetchFailures.Inc()
	}
}

func (m *DiscoveryMetrics) set(n int) {
	if m != nil {
		m.reached.Set(float64(n))
	}
}

// HomeConflict counts a resolution refused because several registries
// claim the account (source: "cards" or "graph").
func (m *DiscoveryMetrics) HomeConflict(source string) {
	if m != nil {
		m.homeConflicts.WithLabelValues(source).Inc()
	}
}
