package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/theprotocol-dev/theprotocol/config"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/identity"
	"github.com/theprotocol-dev/theprotocol/identity/peerstore"
)

// WhoAmI is GET /internal/v1/whoami on the mTLS listener: the node's own
// SPIFFE ID and the verified ID of the caller.
type WhoAmI struct {
	Node   string `json:"node"`
	Caller string `json:"caller"`
}

// startMTLS serves the node's inter-service listener on the registry's mTLS
// port with an X.509 SVID from the node's identity source (SPIRE's Workload
// API, or the frame's dev CA persisted under <DataDir>/ca/<trust-domain>/
// and rotated before expiry; see identitySource). Only workloads
// of the node's own trust domain are admitted for now; the cross-registry
// participant API and federated peers (peer_registries) mount here.
func (n *Node) startMTLS() error {
	o := n.opts
	if o.DataDir == "" && o.Identity != config.IdentitySPIRE {
		return nil // no identity source: tests of the API alone
	}
	td, err := identity.FrameTrustDomain(o.Frame)
	if err != nil {
		return err
	}
	id, err := identity.TEGID(td, o.Registry.ID)
	if err != nil {
		return err
	}
	metrics := identity.NewMetrics(n.Metrics)
	src, err := n.identitySource(td, id, metrics)
	if err != nil {
		return err
	}
	n.closers = append(n.closers, func() { _ = src.Close() })
	bundles := identity.NewBundles(td, src, identity.FederationOptions{Metrics: metrics})
	n.TLS = identity.NewTLS(src, bundles, identity.TLSOptions{Metrics: metrics})
	n.SPIFFEID = id.String()
	// Admitted callers: workloads of our own trust domain, plus the live
	// set of peer registries (peer_registries rows, federated bundles
	// pinned); removing a peer refuses its next handshake.
	authz := identity.AuthorizeMemberOf(td)
	if pool := n.Pools[db.RoleRegistry]; pool != nil {
		n.Peers = peerstore.New(pool, td, bundles)
		if err := n.Peers.Load(context.Background()); err != nil {
			return fmt.Errorf("load peer registries: %w", err)
		}
		authz = identity.AuthorizeAnyOf(authz, identity.AuthorizePeers(n.Peers.PeerSet()))
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.closers = append(n.closers, cancel)
	go bundles.Run(ctx)
	if err := n.serveBundle(td, src); err != nil {
		return err
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /internal/v1/whoami", func(w http.ResponseWriter, r *http.Request) {
		caller, err := identity.PeerID(r.TLS)
		if err != nil {
			http.Error(w, `{"error":{"code":"unauthenticated","message":"no verified client SVID"}}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"node":%q,"caller":%q}`, id.String(), caller.String())
	})
	ln, err := net.Listen("tcp", net.JoinHostPort(o.ListenHost, strconv.Itoa(o.Registry.MTLSPort)))
	if err != nil {
		return fmt.Errorf("mTLS listener: %w", err)
	}
	n.mtlsURL = "https://" + ln.Addr().String()
	// Cross-registry participant API; before serving, so peers
	// from the topology are admitted from the first handshake.
	if err := n.attachXferTLS(ctx, mux, td); err != nil {
		_ = ln.Close()
		return err
	}
	n.attachSupplyAuditTLS(mux, td)
	n.attachSplitTLS(mux)
	n.attachPaidTLS(mux)
	if err := n.attachBridgeTLS(ctx, mux, td, src); err != nil {
		_ = ln.Close()
		return err
	}
	if err := n.attachFederationTLS(mux, td, src); err != nil {
		_ = ln.Close()
		return err
	}
	n.attachGovernanceTLS(mux, td)
	n.attachDiscoveryTLS(mux, td, src)
	srv := &http.Server{
		Handler:           mux,
		TLSConfig:         n.TLS.ServerConfig(authz),
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	go func() {
		if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("mTLS listener stopped", "err", err)
		}
	}()
	n.closers = append(n.closers, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return nil
}

// serveBundle serves the node's trust bundle at a SPIFFE bundle endpoint
// (https_spiffe profile: server-authenticated TLS with the node's SVID, no
// client certificate), so peers can federate with this trust domain.
func (n *Node) serveBundle(td spiffeid.TrustDomain, src identity.Source) error {
	h, err := identity.BundleEndpointHandler(td, src)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(n.opts.ListenHost, strconv.Itoa(n.opts.Registry.BundlePort)))
	if err != nil {
		return fmt.Errorf("bundle endpoint listener: %w", err)
	}
	srv := &http.Server{Handler: h, TLSConfig: n.TLS.BundleEndpointConfig(), ReadHeaderTimeout: 5 * time.Second}
	n.bundleURL = "https://" + ln.Addr().String() + "/"
	go func() {
		if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("bundle endpoint stopped", "err", err)
		}
	}()
	n.closers = append(n.closers, func() { _ = srv.Close() })
	return nil
}

// BundleURL is the node's SPIFFE bundle endpoint ("" when not serving).
func (n *Node) BundleURL() string { return n.bundleURL }

// MTLSURL is the inter-service listener's base URL ("" when not serving).
func (n *Node) MTLSURL() string { return n.mtlsURL }
