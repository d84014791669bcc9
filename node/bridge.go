package node

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/api/bridgeapi"
	"github.com/theprotocol-dev/theprotocol/bridge"
	"github.com/theprotocol-dev/theprotocol/config"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/identity"
	"github.com/theprotocol-dev/theprotocol/identity/peerstore"
)

// Bridge is a mainframe node's cross-frame bridge: the service behind the
// API, the participant on the mTLS listener and the client to peer frames.
// Nil on other nodes.
type Bridge struct {
	Service     *bridge.Service
	Participant *bridge.Participant
	Client      *bridge.Client
	Peers       *bridge.Directory
	Metrics     *bridge.Metrics
	// own is this frame's trust bundle source (handed to peer frames out
	// of band in dev, see FrameBundle).
	own x509bundle.Source
}

// mountBridge creates the bridge on the frame's mainframe TEG and mounts
// its API routes.
func (n *Node) mountBridge(v1 *gin.RouterGroup) {
	if n.Ledger == nil || !n.opts.Registry.Mainframe {
		return
	}
	bs := n.opts.BridgeSettings
	if (config.BridgeSettings{PeerCards: bs.PeerCards, AdvertiseHost: bs.AdvertiseHost}) == bs {
		cards, host := bs.PeerCards, bs.AdvertiseHost
		bs = config.DefaultBridgeSettings()
		bs.PeerCards, bs.AdvertiseHost = cards, host
	}
	batching := bridge.BatcherOptions{MaxBatch: bs.MaxBatch, MaxInFlight: bs.MaxInFlight, MaxBacklog: bs.MaxBacklog}
	dir := bridge.NewDirectory()
	m := bridge.NewMetrics(n.Metrics)
	cl := &bridge.Client{Peers: dir, Currency: n.opts.Frame.Currency}
	n.Bridge = &Bridge{
		Peers: dir, Client: cl, Metrics: m,
		Service: &bridge.Service{Frame: n.opts.Frame.ID, Store: n.Ledger, Peers: dir, Client: cl, Temporal: n.Temporal,
			TaskQueue: n.opts.Registry.TaskQueue(), Window: bs.Window, Log: n.log, Metrics: m,
			Batcher:  &bridge.Batcher{Frame: n.opts.Frame.ID, Temporal: n.Temporal, TaskQueue: n.opts.Registry.TaskQueue(), Opts: batching, Log: n.log},
			Accepter: &bridge.Accepter{Store: n.Ledger}},
		Participant: &bridge.Participant{Store: n.Ledger, Peers: dir, Currency: n.opts.Frame.Currency, Metrics: m, Accounts: n.Ledger},
	}
	if n.Payments != nil {
		// POST /transfers to a receiver of a peer frame goes over the bridge.
		n.Payments.Frames = &bridge.Router{Service: n.Bridge.Service, Client: cl, Now: n.opts.Now}
	}
	(&bridgeapi.Handler{Service: n.Bridge.Service, Idem: n.ledgerIdem, Auth: n.Auth, Now: n.opts.Now}).Mount(v1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { n.Bridge.Service.RunRecovery(ctx, 30*time.Second); done <- struct{}{} }()
	go func() { n.Bridge.Service.RunReconciliation(ctx, 15*time.Second); done <- struct{}{} }()
	n.closers = append(n.closers, func() { cancel(); <-done; <-done; n.Bridge.Service.Accepter.Close() })
}

// attachBridgeTLS mounts the bridge participant on the mTLS listener and
// gives the client the node's SVID; the client talks only to the
// mainframe TEGs of peer frames. It runs before the listener serves, and
// fills the peer directory first: the frames recorded by earlier
// connections, then the configured frame cards. So a peer frame's call
// that arrives right after a restart is admitted, never refused.
func (n *Node) attachBridgeTLS(ctx context.Context, mux *http.ServeMux, td spiffeid.TrustDomain, own x509bundle.Source) error {
	if n.Bridge == nil {
		return nil
	}
	if err := n.loadBridgePeers(ctx); err != nil {
		return err
	}
	n.Bridge.own = own
	n.Bridge.Participant.TrustDomain = td
	n.Bridge.Participant.Register(mux)
	dir := n.Bridge.Peers
	serverAuthz := func(id spiffeid.ID, _ [][]*x509.Certificate) error {
		for _, p := range dir.List() {
			if p.TEG == id {
				return nil
			}
		}
		return fmt.Errorf("%s is no peer frame's mainframe TEG", id)
	}
	n.Bridge.Client.HTTP = n.TLS.HTTPClient(serverAuthz, identity.HTTPClientOptions{Timeout: 10 * time.Second, MaxIdleConnsPerHost: 32})
	if err := n.writeFrameCard(); err != nil {
		return err
	}
	return n.connectFrameCards(ctx)
}

// FrameBundle is this frame's trust bundle, for a peer frame to
// authenticate the first fetch from this node's bundle endpoint.
func (n *Node) FrameBundle() (*spiffebundle.Bundle, error) {
	if n.Bridge == nil || n.Bridge.own == nil {
		return nil, fmt.Errorf("node %s does not bridge", n.opts.Registry.ID)
	}
	td, err := identity.FrameTrustDomain(n.opts.Frame)
	if err != nil {
		return nil, err
	}
	b, err := n.Bridge.own.GetX509BundleForTrustDomain(td)
	if err != nil {
		return nil, err
	}
	return spiffebundle.FromX509Bundle(b), nil
}

// FramePeer describes another frame's mainframe for ConnectFrame.
type FramePeer struct {
	Frame       string
	TrustDomain string
	Currency    string
	Registry    string // its mainframe registry
	MTLSURL     string
	BundleURL   string
	// Bundle authenticates the first fetch from BundleURL (out of band).
	Bundle *spiffebundle.Bundle
}

// ConnectFrame federates with another frame and makes it a bridge peer:
// its trust bundle is fetched from its bundle endpoint and pinned (a
// peer_registries row for its mainframe TEG, which also admits that TEG
// on this node's mTLS listener), and the bridge routes to it.
func (n *Node) ConnectFrame(ctx context.Context, p FramePeer) error {
	if n.Bridge == nil || n.Peers == nil {
		return fmt.Errorf("node %s is no mainframe with a registry: it does not bridge", n.opts.Registry.ID)
	}
	td, err := spiffeid.TrustDomainFromString(p.TrustDomain)
	if err != nil {
		return err
	}
	own, err := identity.FrameTrustDomain(n.opts.Frame)
	if err != nil {
		return err
	}
	if td == own || p.Frame == n.opts.Frame.ID {
		return fmt.Errorf("frame %s is this frame", p.Frame)
	}
	teg, err := identity.TEGID(td, p.Registry)
	if err != nil {
		return err
	}
	if err := n.Peers.Add(ctx, peerstore.Peer{
		ID: teg, BaseURL: p.MTLSURL, BundleEndpointURL: p.BundleURL, Profile: identity.ProfileHTTPSSPIFFE,
		EndpointID: teg, InitialBundle: p.Bundle,
	}, n.opts.Now()); err != nil {
		return err
	}
	// Recorded before the directory admits it, so that whatever a peer
	// was admitted for is admitted again after a restart.
	if err := n.Ledger.SaveBridgePeerFrame(ctx, ledgerstore.BridgePeerFrame{
		Frame: p.Frame, TrustDomain: td.Name(), TEGID: teg.String(), BaseURL: p.MTLSURL, Currency: p.Currency,
	}); err != nil {
		return fmt.Errorf("record peer frame %s: %w", p.Frame, err)
	}
	n.Bridge.Peers.Set(bridge.Peer{Frame: p.Frame, TrustDomain: td, TEG: teg, BaseURL: p.MTLSURL, Currency: p.Currency})
	return nil
}

// ConnectFrames federates two frames' mainframe nodes running in this
// process with each other (the dev stack and tests).
func ConnectFrames(ctx context.Context, a, b *Node) error {
	for _, pair := range [][2]*Node{{a, b}, {b, a}} {
		from, to := pair[0], pair[1]
		bundle, err := to.FrameBundle()
		if err != nil {
			return err
		}
		if err := from.ConnectFrame(ctx, FramePeer{
			Frame: to.opts.Frame.ID, TrustDomain: to.opts.Frame.TrustDomain, Currency: to.opts.Frame.Currency,
			Registry: to.opts.Registry.ID, MTLSURL: to.MTLSURL(), BundleURL: to.BundleURL(), Bundle: bundle,
		}); err != nil {
			return fmt.Errorf("connect %s to frame %s: %w", from.opts.Registry.ID, to.opts.Frame.ID, err)
		}
	}
	return nil
}

// bridgeActivities are the worker's bridge activities (none off the mainframe).
func (n *Node) bridgeActivities() []any {
	if n.Bridge == nil {
		return nil
	}
	port := bridge.LedgerPort{Store: n.Ledger}
	if b := n.Bridge.Service.Batcher; b != nil {
		port.Settled = b.Settled
	}
	return []any{&activities.Bridge{Ledger: port, Peers: n.Bridge.Client}, &activities.BridgeBatch{Ledger: port, Peers: n.Bridge.Client}}
}
