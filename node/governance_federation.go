package node

import (
	"fmt"
	"net/http"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/fedgov"
	"github.com/theprotocol-dev/theprotocol/identity"
	"github.com/theprotocol-dev/theprotocol/xfer"
)

// federationService is the federation tier of this node's TEG (nil
// without a TEG or a data directory for its signing key). It is
// stateless: the peers are read from the node's directories per call.
func (n *Node) federationService() *fedgov.Service {
	if n.Ledger == nil || n.opts.DataDir == "" {
		return nil
	}
	key, err := fedgov.LoadKey(n.opts.DataDir, n.opts.Registry.ID)
	if err != nil {
		n.log.Warn("governance signing key: the federation tier is off", "err", err)
		return nil
	}
	return &fedgov.Service{
		Ledger: n.Ledger, Self: n.opts.Registry.ID, Frame: n.opts.Frame.ID, Key: key, Peers: federationPeers{n},
		Temporal: n.Temporal, TaskQueue: n.opts.Registry.TaskQueue(), Limits: n.opts.GovernanceSettings.Limits,
	}
}

// federationPeers are the registries this node federates with: the
// frame's other TEGs (cross-registry channel) and, on a mainframe, the
// peer frames' mainframe TEGs (the bridge's channel, trusted through the
// frames' federated bundles).
type federationPeers struct{ n *Node }

func (p federationPeers) List() []fedgov.Endpoint {
	var out []fedgov.Endpoint
	seen := map[string]bool{}
	if x := p.n.Xfer; x != nil {
		for _, peer := range x.Peers.List() {
			seen[peer.Registry] = true
			out = append(out, fedgov.Endpoint{Registry: peer.Registry, Via: ledgerstore.ViaFrame, HTTP: x.Client.HTTP, BaseURL: peer.BaseURL})
		}
	}
	if b := p.n.Bridge; b != nil {
		for _, peer := range b.Peers.List() {
			reg, ok := xfer.CallerRegistry(peer.TEG)
			if !ok || seen[reg] {
				// A registry name both in this frame and another frame's
				// mainframe would be ambiguous: the frame's own wins.
				continue
			}
			seen[reg] = true
			out = append(out, fedgov.Endpoint{Registry: reg, Via: ledgerstore.ViaBridge, HTTP: b.Client.HTTP, BaseURL: peer.BaseURL})
		}
	}
	return out
}

func (p federationPeers) Resolve(registry string) (fedgov.Endpoint, bool) {
	for _, e := range p.List() {
		if e.Registry == registry {
			return e, true
		}
	}
	return fedgov.Endpoint{}, false
}

// federationCaller names the federated registry behind an mTLS request:
// a TEG of this frame that is an active peer, or a peer frame's mainframe
// TEG. Any other verified workload is refused.
func (n *Node) federationCaller(td spiffeid.TrustDomain) fedgov.CallerFunc {
	return func(r *http.Request) (string, error) {
		id, err := identity.PeerID(r.TLS)
		if err != nil {
			return "", err
		}
		reg, ok := xfer.CallerRegistry(id)
		if !ok {
			return "", fmt.Errorf("%s is no registry's TEG", id)
		}
		if id.MemberOf(td) {
			if n.Xfer != nil {
				if _, ok := n.Xfer.Peers.Get(reg); ok {
					return reg, nil
				}
			}
			return "", fmt.Errorf("%s is no active peer of this registry", id)
		}
		if n.Bridge != nil {
			for _, p := range n.Bridge.Peers.List() {
				if p.TEG == id {
					return reg, nil
				}
			}
		}
		return "", fmt.Errorf("%s is no peer frame's mainframe", id)
	}
}

// attachGovernanceTLS mounts the federation tier's peer side on the mTLS
// listener.
func (n *Node) attachGovernanceTLS(mux *http.ServeMux, td spiffeid.TrustDomain) {
	if svc := n.federationService(); svc != nil {
		svc.Register(mux, n.federationCaller(td))
	}
}

// governanceFederationActivities are the federation tally's activities
// (nil without the federation tier).
func (n *Node) governanceFederationActivities() *activities.GovernanceFederation {
	svc := n.federationService()
	if svc == nil {
		return nil
	}
	return &activities.GovernanceFederation{Fed: svc}
}
