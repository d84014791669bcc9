package node

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/api/sagaapi"
	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/config"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/registrystore"
	"github.com/theprotocol-dev/theprotocol/identity"
	"github.com/theprotocol-dev/theprotocol/identity/peerstore"
	"github.com/theprotocol-dev/theprotocol/xfer"
)

// Xfer is a node's cross-registry transfer machinery: the
// participant API on the mTLS listener, the peer client and router, and the
// settlement batcher. Nil on nodes without a TEG. Payments are routed to it
// by the node's payments.Service.
type Xfer struct {
	Peers       *xfer.Directory
	Client      *xfer.Client
	Router      *xfer.Router
	Batcher     *xfer.Batcher
	Participant *xfer.Participant
	// Accepter group-commits acceptances (holds + pending rows).
	Accepter *xfer.Accepter
}

// XferSettings tune settlement, read and validated by config and handed in
// through Options.
type XferSettings = config.XferSettings

// setupXfer creates the node's cross-registry machinery once its ledger is
// open (the mTLS parts are attached by attachXferTLS).
func (n *Node) setupXfer() {
	if n.Ledger == nil {
		return
	}
	s := n.opts.XferSettings
	dir := xfer.NewDirectory()
	metrics := xfer.NewMetrics(n.Metrics)
	cl := &xfer.Client{Peers: dir, Metrics: metrics}
	n.Xfer = &Xfer{
		Peers: dir, Client: cl, Router: &xfer.Router{Client: cl, Log: n.log, Metrics: metrics},
		Batcher: &xfer.Batcher{
			Source: n.opts.Registry.ID, TaskQueue: n.opts.Registry.TaskQueue(), Temporal: n.Temporal, Store: n.Ledger, Log: n.log,
			Opts: xfer.BatcherOptions{MaxBatch: s.MaxBatch, MaxAge: s.MaxAge, MaxInFlight: s.MaxInFlight, MaxBacklog: s.MaxBacklog},
		},
		Participant: &xfer.Participant{Store: n.Ledger, Metrics: metrics, Currency: n.opts.Frame.Currency},
		Accepter:    &xfer.Accepter{Store: n.Ledger},
	}
	n.xferSettings = s
	n.Metrics.MustRegister(newSagaCollector(n.Temporal, n.opts.Registry.TemporalNamespace(), n.log))
}

// attachXferTLS mounts the participant API on the mTLS listener's mux and
// gives the peer client the node's SVID; peers come from peer_registries
// and, in dev, from the topology's other registries of the frame. Both
// directions admit only the TEGs of active peers of the node's own trust
// domain (xfer.AdmitCaller).
func (n *Node) attachXferTLS(ctx context.Context, mux *http.ServeMux, td spiffeid.TrustDomain) error {
	if n.Xfer == nil {
		return nil
	}
	n.Xfer.Participant.TrustDomain = td
	var allowed xfer.PeerAllowed
	if n.Peers != nil {
		allowed = n.Peers.PeerSet().Allowed
		n.Xfer.Participant.Allowed = allowed
	}
	serverAuthz := xfer.AuthorizePeerTEG(td, allowed)
	n.Xfer.Participant.Register(mux)
	n.Xfer.Client.HTTP = n.TLS.HTTPClient(serverAuthz, identity.HTTPClientOptions{Timeout: 10 * time.Second, MaxIdleConnsPerHost: 32})
	if err := n.loadXferPeers(ctx, td); err != nil {
		return err
	}
	if n.Peers == nil {
		// A TEG whose registry runs in another process has no peer set
		// (the licences live in the registry's database): it admits no
		// peer and takes no cross-registry transfer (docs/adr/0035).
		n.log.Warn("TEG without its registry in the process: no peers, no cross-registry transfers")
		return nil
	}
	for _, r := range n.opts.Frame.Registries {
		if r.ID == n.opts.Registry.ID || r.MTLSPort == 0 || !r.HasRole(config.RoleTEG) {
			continue
		}
		if _, ok := n.Xfer.Peers.Get(r.ID); ok {
			continue
		}
		if err := n.ConnectPeer(ctx, r.ID, "https://"+net.JoinHostPort(n.peerHost(r.ID), strconv.Itoa(r.MTLSPort))); err != nil {
			if apperr.Is(err, apperr.FailedPrecondition) {
				// Suspended or revoked by an operator: the topology never
				// overrides that, and the node runs without the peer.
				n.log.Warn("topology peer not connected", "peer", r.ID, "err", err)
				continue
			}
			return fmt.Errorf("peer %s from the topology: %w", r.ID, err)
		}
	}
	return nil
}

// loadXferPeers fills the directory from the active peer_registries rows
// of TEGs in our trust domain.
func (n *Node) loadXferPeers(ctx context.Context, td spiffeid.TrustDomain) error {
	pool := n.Pools[db.RoleRegistry]
	if pool == nil {
		return nil
	}
	peers := registrystore.NewPeers(pool)
	after := ""
	for range 100 {
		rows, err := peers.ListActive(ctx, after, 500)
		if err != nil {
			return fmt.Errorf("load peers: %w", err)
		}
		for _, r := range rows {
			id, err := spiffeid.FromString(r.SpiffeID)
			if err != nil || id.TrustDomain() != td {
				continue
			}
			if reg, ok := xfer.CallerRegistry(id); ok {
				n.Xfer.Peers.Set(xfer.Peer{Registry: reg, BaseURL: r.BaseURL})
			}
		}
		if len(rows) < 500 {
			return nil
		}
		after = rows[len(rows)-1].SpiffeID
	}
	return nil
}

// ConnectPeer makes registryID (a TEG of this node's frame whose mTLS
// listener is at mtlsURL) a peer: a peer_registries row (which admits its
// SVID on this node's listener) and a route for cross-registry transfers.
func (n *Node) ConnectPeer(ctx context.Context, registryID, mtlsURL string) error {
	if n.Xfer == nil || n.Peers == nil {
		return fmt.Errorf("node %s has no TEG or no registry role: no peers", n.opts.Registry.ID)
	}
	td, err := identity.FrameTrustDomain(n.opts.Frame)
	if err != nil {
		return err
	}
	id, err := identity.TEGID(td, registryID)
	if err != nil {
		return err
	}
	if err := n.Peers.Add(ctx, peerstore.Peer{ID: id, BaseURL: mtlsURL}, n.opts.Now()); err != nil {
		return err
	}
	n.Xfer.Peers.Set(xfer.Peer{Registry: registryID, BaseURL: mtlsURL})
	n.syncPeers(ctx)
	return nil
}

// settlementActivities are the worker's cross-registry activities (none
// without a TEG).
func (n *Node) settlementActivities() []any {
	if n.Xfer == nil {
		return nil
	}
	return []any{
		&activities.Settlement{Ledger: xfer.LedgerPort{Store: n.Ledger, Currency: n.opts.Frame.Currency}, Peers: xfer.PeersPort{Client: n.Xfer.Client}},
		&activities.PrepareSweep{Sweeper: &xfer.Sweeper{Store: n.Ledger, Client: n.Xfer.Client, MinAge: n.xferSettings.PrepareMaxAge,
			Now: n.opts.Now, Currency: n.opts.Frame.Currency}},
	}
}

// startXferRecovery runs the batcher's crash recovery until the node stops.
func (n *Node) startXferRecovery() {
	if n.Xfer == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); n.Xfer.Batcher.RunRecovery(ctx, n.xferSettings.RecoverEvery) }()
	n.closers = append(n.closers, func() { cancel(); <-done; n.Xfer.Accepter.Close(); n.Xfer.Batcher.Close() })
}

// mountSagas mounts the admin saga routes (TEG nodes).
func (n *Node) mountSagas(v1 *gin.RouterGroup) {
	if n.Ledger == nil {
		return
	}
	(&sagaapi.Handler{
		Temporal: n.Temporal, Namespace: n.opts.Registry.TemporalNamespace(), UIBase: n.xferSettings.TemporalUIBase,
		Xfers: n.Ledger, Idem: n.ledgerIdem, Auth: n.Auth, Now: n.opts.Now,
	}).Mount(v1)
}
