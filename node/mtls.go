package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/theprotocol-dev/theprotocol/identity"
)

// WhoAmI is GET /internal/v1/whoami on the mTLS listener: the node's own
// SPIFFE ID and the verified ID of the caller.
type WhoAmI struct {
	Node   string `json:"node"`
	Caller string `json:"caller"`
}

// startMTLS serves the node's inter-service listener on the registry's mTLS
// port with an X.509 SVID from the frame's dev CA (persisted under
// <DataDir>/ca/<trust-domain>/ and rotated before expiry). Only workloads
// of the node's own trust domain are admitted for now; the cross-registry
// participant API and federated peers (peer_registries) mount here.
func (n *Node) startMTLS() error {
	o := n.opts
	if o.DataDir == "" {
		return nil
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
	ca, err := identity.OpenCA(o.DataDir, td, identity.CAOptions{})
	if err != nil {
		return fmt.Errorf("dev CA for %s: %w", td, err)
	}
	src, err := identity.NewDevSource(ca, id, identity.DevSourceOptions{Metrics: metrics})
	if err != nil {
		return err
	}
	n.closers = append(n.closers, func() { _ = src.Close() })
	n.TLS = identity.NewTLS(src, identity.NewBundles(td, src, identity.FederationOptions{Metrics: metrics}), identity.TLSOptions{Metrics: metrics})
	n.SPIFFEID = id.String()

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
	srv := &http.Server{
		Handler:           mux,
		TLSConfig:         n.TLS.ServerConfig(identity.AuthorizeMemberOf(td)),
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	n.mtlsURL = "https://" + ln.Addr().String()
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

// MTLSURL is the inter-service listener's base URL ("" when not serving).
func (n *Node) MTLSURL() string { return n.mtlsURL }
