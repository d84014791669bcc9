package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/registrystore"
	"github.com/theprotocol-dev/theprotocol/events"
	"github.com/theprotocol-dev/theprotocol/federation"
	"github.com/theprotocol-dev/theprotocol/identity"
	"github.com/theprotocol-dev/theprotocol/xfer"
)

// peersChannel is the Postgres notification channel a peer licence change
// is announced on (registrystore.Peers.SetStatus).
const peersChannel = "theprotocol_peers"

// peersReloadEvery is the backstop re-read of the peer set, for a
// notification lost while the listening connection was down.
const peersReloadEvery = 30 * time.Second

// licences builds the node's peer licence service (nil without a registry
// database). The mTLS parts are reached lazily: the listener starts after
// the routes are mounted.
func (n *Node) licences() *federation.Licences {
	pool := n.Pools[db.RoleRegistry]
	if pool == nil {
		return nil
	}
	td, err := identity.FrameTrustDomain(n.opts.Frame)
	if err != nil {
		return nil
	}
	return &federation.Licences{
		Self: n.opts.Registry.ID, TrustDomain: td, Store: registrystore.NewPeers(pool),
		Outbox: db.NewOutboxWriter(n.opts.Frame.ID, n.opts.Registry.ID, events.SourceRegistry, n.policies[db.RoleRegistry].Guard()),
		Probe:  n.probePeer,
		Connect: func(ctx context.Context, registry, baseURL string) error {
			if n.Peers == nil || n.Xfer == nil {
				return apperr.New(apperr.Unavailable, "the inter-registry listener is not up yet")
			}
			return n.ConnectPeer(ctx, registry, baseURL)
		},
		Reload: n.reloadPeers,
		Now:    n.opts.Now,

		Handshake: n.initiatePeering,
	}
}

// probePeer calls the mTLS listener at baseURL and returns the SPIFFE ID of
// the SVID it presents, verified against the frame's bundle.
func (n *Node) probePeer(ctx context.Context, baseURL string) (spiffeid.ID, error) {
	if n.TLS == nil {
		return spiffeid.ID{}, errors.New("this node has no mTLS identity")
	}
	td, err := identity.FrameTrustDomain(n.opts.Frame)
	if err != nil {
		return spiffeid.ID{}, err
	}
	cl := n.TLS.HTTPClient(identity.AuthorizeMemberOf(td), identity.HTTPClientOptions{Timeout: 5 * time.Second})
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/internal/v1/whoami", nil)
	if err != nil {
		return spiffeid.ID{}, err
	}
	resp, err := cl.Do(req)
	if err != nil {
		return spiffeid.ID{}, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return spiffeid.ID{}, fmt.Errorf("whoami answered %d", resp.StatusCode)
	}
	return identity.PeerID(resp.TLS)
}

// reloadPeers re-reads the active peers into this process's peer set (the
// mTLS admission and the participant API consult it per call) and its
// route directory: a peer no longer active is refused and no longer routed
// to from the next call.
func (n *Node) reloadPeers(ctx context.Context) error {
	defer n.syncPeers(ctx) // a reinstated peer's card sync starts again
	if n.Peers == nil {
		return nil
	}
	if err := n.Peers.Load(ctx); err != nil {
		return err
	}
	if n.Xfer == nil {
		return nil
	}
	td, err := identity.FrameTrustDomain(n.opts.Frame)
	if err != nil {
		return err
	}
	active := map[string]string{}
	peers := registrystore.NewPeers(n.Pools[db.RoleRegistry])
	after := ""
	for range 100 {
		rows, err := peers.ListActive(ctx, after, 500)
		if err != nil {
			return err
		}
		for _, r := range rows {
			id, err := spiffeid.FromString(r.SpiffeID)
			if err != nil || id.TrustDomain() != td {
				continue
			}
			if reg, ok := xfer.CallerRegistry(id); ok {
				active[reg] = r.BaseURL
			}
		}
		if len(rows) < 500 {
			break
		}
		after = rows[len(rows)-1].SpiffeID
	}
	changed := false
	for _, p := range n.Xfer.Peers.List() {
		if _, ok := active[p.Registry]; !ok {
			n.Xfer.Peers.Remove(p.Registry)
			changed = true
		}
	}
	for reg, u := range active {
		if p, ok := n.Xfer.Peers.Get(reg); !ok || p.BaseURL != u {
			changed = true
		}
		n.Xfer.Peers.Set(xfer.Peer{Registry: reg, BaseURL: u})
	}
	if changed {
		n.Xfer.Router.Forget()
	}
	n.discoveryPeersChanged(changed)
	return nil
}

// watchPeers applies the licence decisions made on any process of this
// registry: it LISTENs on the registry database and reloads the peer set
// on every notification, and every peersReloadEvery as a backstop.
func (n *Node) watchPeers() {
	pool := n.Pools[db.RoleRegistry]
	if pool == nil || n.Peers == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			conn, err := pool.Acquire(ctx)
			if err == nil {
				_, err = conn.Exec(ctx, "LISTEN "+peersChannel)
			}
			if err == nil {
				// Anything missed while not listening.
				if err := n.reloadPeers(ctx); err != nil && ctx.Err() == nil {
					n.log.Warn("reload peers", "err", err)
				}
				for ctx.Err() == nil {
					wctx, wcancel := context.WithTimeout(ctx, peersReloadEvery)
					_, werr := conn.Conn().WaitForNotification(wctx)
					wcancel()
					if werr != nil && ctx.Err() == nil && !errors.Is(werr, context.DeadlineExceeded) {
						err = werr
						break
					}
					if rerr := n.reloadPeers(ctx); rerr != nil && ctx.Err() == nil {
						n.log.Warn("reload peers", "err", rerr)
					}
				}
			}
			if conn != nil {
				// The connection may be mid-LISTEN: never hand it back.
				_ = conn.Conn().Close(context.Background())
				conn.Release()
			}
			if err != nil && ctx.Err() == nil {
				n.log.Warn("peer licence notifications", "err", err)
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
			}
		}
	}()
	n.closers = append(n.closers, func() { cancel(); <-done })
}
