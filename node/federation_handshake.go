package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	spiffefed "github.com/spiffe/go-spiffe/v2/federation"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/theprotocol-dev/theprotocol/api/federationapi"
	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/registrystore"
	"github.com/theprotocol-dev/theprotocol/federation"
	"github.com/theprotocol-dev/theprotocol/identity"
)

// The peering handshake on the mTLS listener.
const (
	peeringPath         = "/internal/v1/federation/peering"
	peeringAcceptedPath = "/internal/v1/federation/peering/accepted"
)

// attachFederationTLS serves the federation's inter-registry routes on
// the mTLS listener: the card feed and the peering handshake.
func (n *Node) attachFederationTLS(mux *http.ServeMux, td spiffeid.TrustDomain, src identity.Source) error {
	if err := n.attachCardSyncTLS(mux, td, src); err != nil {
		return err
	}
	n.attachHandshakeTLS(mux, td, src)
	return nil
}

// attachHandshakeTLS builds the handshake once the node has an SVID and
// serves the peer side of it. Any workload of the frame reaches these
// routes (the listener admits the trust domain); each handler checks the
// caller is a registry's TEG.
func (n *Node) attachHandshakeTLS(mux *http.ServeMux, td spiffeid.TrustDomain, src identity.Source) {
	pool := n.Pools[db.RoleRegistry]
	lic := n.licences()
	if pool == nil || lic == nil || n.TLS == nil {
		return
	}
	client := func(id spiffeid.ID) *http.Client {
		return n.TLS.HTTPClient(identity.AuthorizeID(id), identity.HTTPClientOptions{Timeout: 10 * time.Second})
	}
	h := &federation.Handshake{
		Licences: lic, Store: registrystore.NewPeers(pool),
		SelfURL: n.MTLSURL, SelfBundleURL: n.BundleURL,
		AutoAccept: n.opts.FederationSync.AutoAccept,
		Announce: func(ctx context.Context, id spiffeid.ID, baseURL string, req federation.PeeringRequest) (federation.PeeringAnswer, error) {
			var ans federation.PeeringAnswer
			return ans, postMTLS(ctx, client(id), baseURL+peeringPath, req, &ans)
		},
		Accepted: func(ctx context.Context, id spiffeid.ID, baseURL string) error {
			return postMTLS(ctx, client(id), baseURL+peeringAcceptedPath, struct{}{}, nil)
		},
		FetchBundle: func(ctx context.Context, id spiffeid.ID, bundleURL string) ([]byte, error) {
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			b, err := spiffefed.FetchBundle(ctx, td, bundleURL, spiffefed.WithSPIFFEAuth(src, id))
			if err != nil {
				return nil, err
			}
			return b.Marshal()
		},
	}
	mux.HandleFunc("POST "+peeringPath, func(w http.ResponseWriter, r *http.Request) {
		caller, err := identity.PeerID(r.TLS)
		if err != nil {
			writeMTLSError(w, apperr.New(apperr.PeerNotAdmitted, "no verified client SVID"))
			return
		}
		var req federation.PeeringRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
			writeMTLSError(w, apperr.New(apperr.Invalid, "body must be a peering request"))
			return
		}
		ans, err := h.Receive(r.Context(), caller, req)
		if err != nil {
			writeMTLSError(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(ans)
	})
	mux.HandleFunc("POST "+peeringAcceptedPath, func(w http.ResponseWriter, r *http.Request) {
		caller, err := identity.PeerID(r.TLS)
		if err != nil {
			writeMTLSError(w, apperr.New(apperr.PeerNotAdmitted, "no verified client SVID"))
			return
		}
		v, err := h.ReceiveAccepted(r.Context(), caller)
		if err != nil && !apperr.Is(err, apperr.Unavailable) {
			writeMTLSError(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	})
	n.handshake.Store(h)
}

// postMTLS posts body as JSON and decodes a 200 answer into out; an error
// answer comes back as an *apperr.Error with the peer's code.
func postMTLS(ctx context.Context, cl *http.Client, url string, body, out any) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(raw))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := cl.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if json.Unmarshal(got, &e) == nil && e.Error.Code != "" {
			return apperr.New(apperr.Code(e.Error.Code), "%s", e.Error.Message)
		}
		return fmt.Errorf("%s answered %d", url, resp.StatusCode)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(got, out)
}

// initiatePeering is Licences.Handshake: the handshake once the mTLS
// identity is up.
func (n *Node) initiatePeering(ctx context.Context, id spiffeid.ID, registry, baseURL, by, reason string) (federation.PeerView, error) {
	h := n.handshake.Load()
	if h == nil {
		return federation.PeerView{}, apperr.New(apperr.Unavailable, "the inter-registry listener is not up yet")
	}
	return h.Initiate(ctx, id, registry, baseURL, by, reason)
}

// mountHandshake serves POST /admin/federation/peers/{registry}/accept.
func (n *Node) mountHandshake(v1 *gin.RouterGroup) {
	if n.Pools[db.RoleRegistry] == nil || n.ledgerIdem == nil {
		return
	}
	federationapi.MountHandshake(v1, federationapi.HandshakeOptions{
		Auth: n.Auth, Idempotency: n.ledgerIdem, Now: n.opts.Now,
		Accept: func(ctx context.Context, registry, by, reason string) (federation.PeerView, error) {
			h := n.handshake.Load()
			if h == nil {
				return federation.PeerView{}, apperr.New(apperr.Unavailable, "the inter-registry listener is not up yet")
			}
			return h.Accept(ctx, registry, by, reason)
		},
	})
}
