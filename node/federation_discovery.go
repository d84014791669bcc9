package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/theprotocol-dev/theprotocol/api/federationapi"
	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/federation"
	"github.com/theprotocol-dev/theprotocol/identity"
	"github.com/theprotocol-dev/theprotocol/xfer"
)

// homeResolver is the node's answer to where an account lives (the
// payment router and GET /federation/resolve): signed agent cards first
// when the node has a card source, else a question to every registry of
// its trusted set. It also builds the node's discovery. nil without a TEG.
func (n *Node) homeResolver() *federation.Resolver {
	if n.Xfer == nil {
		return nil
	}
	if n.fed.resolver != nil {
		return n.fed.resolver
	}
	metrics := federation.NewDiscoveryMetrics(n.Metrics)
	d := &federation.Discovery{
		Self: n.opts.Registry.ID, Depth: n.opts.DiscoverySettings.Depth, Log: n.log, Metrics: metrics, Now: n.opts.Now,
		Direct: func() []federation.DirectPeer {
			ps := n.Xfer.Peers.List()
			out := make([]federation.DirectPeer, len(ps))
			for i, p := range ps {
				out[i] = federation.DirectPeer{Registry: p.Registry, BaseURL: p.BaseURL}
			}
			return out
		},
		Fetch:    n.fetchListing,
		OnChange: n.Xfer.Router.Forget,
	}
	n.fed.discovery = d
	n.fed.kick = make(chan struct{}, 1)
	// Registries beyond the peers are called directly over mTLS: trusted
	// through the chain of signed listings, their TEG identity checked on
	// every handshake (see attachDiscoveryTLS).
	n.Xfer.Client.Beyond = func(registry string) (xfer.Peer, bool) {
		u, ok := d.Lookup(registry)
		return xfer.Peer{Registry: registry, BaseURL: u}, ok
	}
	n.Xfer.Router.Candidates = func() []xfer.Peer {
		ps := n.Xfer.Peers.List()
		for _, b := range d.Beyond() {
			if _, ok := n.Xfer.Peers.Get(b.Registry); !ok {
				ps = append(ps, xfer.Peer{Registry: b.Registry, BaseURL: b.BaseURL})
			}
		}
		return ps
	}
	n.fed.resolver = &federation.Resolver{
		Self: n.opts.Registry.ID, Local: n.Ledger.AccountExists, Router: n.Xfer.Router, Cards: nodeCards{n},
		// A peer, or a registry reached through peers (a node that does
		// not walk, without a registry database, still has its peers).
		Trusted: func(reg string) bool { _, ok := n.Xfer.Peers.Get(reg); return ok || d.Trusted(reg) },
		Log:     n.log, Metrics: metrics,
	}
	return n.fed.resolver
}

// mountTopology serves GET /federation/topology and the walk on demand.
func (n *Node) mountTopology(v1 *gin.RouterGroup) {
	if n.homeResolver() == nil {
		return
	}
	federationapi.MountTopology(v1, federationapi.TopologyOptions{Discovery: n.fed.discovery, Idempotency: n.ledgerIdem, Auth: n.Auth, Now: n.opts.Now})
}

// attachDiscoveryTLS serves this registry's signed peer listing on the
// mTLS listener, widens the participant API's admission (and the client's
// check of whom it calls) from the peers to the trusted set, and starts
// the scheduled walk. A node without a TEG or without a registry database
// does not discover.
func (n *Node) attachDiscoveryTLS(mux *http.ServeMux, td spiffeid.TrustDomain, src identity.Source) {
	if n.fed.discovery == nil || n.Peers == nil || n.Xfer == nil {
		return
	}
	d := n.fed.discovery
	mux.HandleFunc("GET "+federation.PathPeerListing, func(w http.ResponseWriter, r *http.Request) {
		caller, err := identity.PeerID(r.TLS)
		if err != nil {
			http.Error(w, `{"error":{"code":"unauthenticated","message":"no verified client SVID"}}`, http.StatusUnauthorized)
			return
		}
		// Any TEG of the frame may read who this registry licenses: the
		// list is what lets a registry several hops away check the chain
		// that leads here.
		if _, ok := xfer.CallerRegistry(caller); !ok || caller.TrustDomain() != td {
			http.Error(w, `{"error":{"code":"peer_not_admitted","message":"only TEGs of this frame read its peer listing"}}`, http.StatusForbidden)
			return
		}
		svid, err := src.GetX509SVID()
		if err != nil {
			http.Error(w, `{"error":{"code":"unavailable","message":"no SVID to sign with"}}`, http.StatusServiceUnavailable)
			return
		}
		l := federation.PeerListing{Registry: n.opts.Registry.ID, TrustDomain: td.Name(), IssuedAt: n.opts.Now().UTC()}
		for _, p := range n.Xfer.Peers.List() {
			l.Peers = append(l.Peers, federation.ListedPeer{Registry: p.Registry, BaseURL: p.BaseURL})
		}
		signed, err := federation.SignListing(svid, l)
		if err != nil {
			http.Error(w, `{"error":{"code":"internal","message":"signing failed"}}`, http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(signed)
	})
	n.fed.listings.Store(&listingClient{td: td, bundles: src,
		http: n.TLS.HTTPClient(identity.AuthorizeMemberOf(td), identity.HTTPClientOptions{Timeout: 5 * time.Second})})

	direct := n.Xfer.Participant.Allowed
	allowed := func(id spiffeid.ID) bool {
		if direct != nil && direct(id) {
			return true
		}
		reg, ok := xfer.CallerRegistry(id)
		return ok && id.TrustDomain() == td && d.Trusted(reg)
	}
	n.Xfer.Participant.Allowed = allowed
	n.Xfer.Client.HTTP = n.TLS.HTTPClient(xfer.AuthorizePeerTEG(td, allowed), identity.HTTPClientOptions{Timeout: 10 * time.Second, MaxIdleConnsPerHost: 32})

	ctx, cancel := context.WithCancel(context.Background())
	kick := n.fed.kick
	done := make(chan struct{})
	go func() {
		defer close(done)
		every := n.opts.DiscoverySettings.Interval
		if n.fedOpen != nil {
			select {
			case <-ctx.Done():
				return
			case <-n.fedOpen:
			}
		}
		t := time.NewTimer(0)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			case <-kick:
			}
			d.Run(ctx)
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
			t.Reset(every)
		}
	}()
	n.closers = append(n.closers, func() { cancel(); <-done })
}

// discoveryPeersChanged follows a re-read of this registry's own
// licences: the trusted set is recomputed at once from the listings
// already verified (a suspended or revoked peer, and what was reached only
// through it, leave it before this returns), and, when the peers changed,
// a walk is queued to learn what a new peer leads to.
func (n *Node) discoveryPeersChanged(changed bool) {
	if n.fed.discovery == nil {
		return
	}
	n.fed.discovery.Recompute()
	if !changed {
		return
	}
	select {
	case n.fed.kick <- struct{}{}:
	default:
	}
}

// Discovery is the node's walk of the federation graph (nil without a
// TEG).
func (n *Node) Discovery() *federation.Discovery { return n.fed.discovery }

// fedDiscovery is the node's discovery and resolution.
type fedDiscovery struct {
	resolver  *federation.Resolver
	discovery *federation.Discovery
	kick      chan struct{} // queues a walk
	// listings is set once the mTLS listener is up (the API may ask for a
	// walk before).
	listings atomic.Pointer[listingClient]
}

type listingClient struct {
	td      spiffeid.TrustDomain
	bundles x509bundle.Source
	http    *http.Client
}

// fetchListing gets registry's signed peer listing from the mTLS listener
// at baseURL, checks the listener presented registry's TEG SVID, and
// verifies the listing against the frame's bundle.
func (n *Node) fetchListing(ctx context.Context, registry, baseURL string) (federation.PeerListing, federation.SignedListing, error) {
	lc := n.fed.listings.Load()
	if lc == nil {
		return federation.PeerListing{}, federation.SignedListing{}, apperr.New(apperr.Unavailable, "the inter-registry listener is not up yet")
	}
	want, err := identity.TEGID(lc.td, registry)
	if err != nil {
		return federation.PeerListing{}, federation.SignedListing{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+federation.PathPeerListing, nil)
	if err != nil {
		return federation.PeerListing{}, federation.SignedListing{}, err
	}
	resp, err := lc.http.Do(req)
	if err != nil {
		return federation.PeerListing{}, federation.SignedListing{}, err
	}
	defer resp.Body.Close()
	got, err := identity.PeerID(resp.TLS)
	if err != nil || got != want {
		// A listing names a URL; the registry there must be the one named.
		return federation.PeerListing{}, federation.SignedListing{}, apperr.New(apperr.Invalid, "%s answers as %s, not %s", baseURL, got, want)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, federation.MaxListingBytes*2))
	if err != nil {
		return federation.PeerListing{}, federation.SignedListing{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return federation.PeerListing{}, federation.SignedListing{}, fmt.Errorf("%s answered %d", baseURL, resp.StatusCode)
	}
	var s federation.SignedListing
	if err := json.Unmarshal(raw, &s); err != nil {
		return federation.PeerListing{}, federation.SignedListing{}, errors.New("malformed listing")
	}
	l, err := federation.VerifyListing(s, lc.bundles, lc.td, registry, n.opts.Now())
	return l, s, err
}

// nodeCards is the resolver's card source: the node's card sync when it
// has one (it is set after the resolver is built), none otherwise.
type nodeCards struct{ n *Node }

func (c nodeCards) Origins(ctx context.Context, account string) ([]string, error) {
	cs := c.n.cardSync.Load()
	if cs == nil {
		return nil, nil
	}
	return cs.Origins(ctx, account)
}

// StartFederation opens a node started with DeferFederation: the discovery
// walk runs and the card syncs of the active peers start. Idempotent.
func (n *Node) StartFederation(ctx context.Context) {
	if n.fedOpen == nil {
		return
	}
	n.fedOpenOnce.Do(func() { close(n.fedOpen) })
	n.syncPeers(ctx)
}

// federationOpen reports whether the node's federation loops may run.
func (n *Node) federationOpen() bool {
	if n.fedOpen == nil {
		return true
	}
	select {
	case <-n.fedOpen:
		return true
	default:
		return false
	}
}
