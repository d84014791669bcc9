package node

import (
	"context"
	"fmt"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/theprotocol-dev/theprotocol/config"
	"github.com/theprotocol-dev/theprotocol/identity"
)

// identitySource opens the source of the node's X.509 SVIDs for id:
//
//   - config.IdentitySPIRE: the SPIRE agent's Workload API at
//     Options.SPIFFEEndpointSocket. The agent must hold a registration
//     entry for id (spiffe://<frame trust domain>/teg/<registry>) matching
//     this process; the node waits up to Options.SPIREStartTimeout for it
//     and fails to start without it. SVID rotation and bundle updates are
//     pushed by the agent.
//   - config.IdentityDevCA or "": the frame's dev CA persisted under
//     <DataDir>/ca/<trust domain>/, issuing and rotating SVIDs in process.
//     `serve` passes it only when asked for explicitly.
func (n *Node) identitySource(td spiffeid.TrustDomain, id spiffeid.ID, metrics *identity.Metrics) (identity.Source, error) {
	o := n.opts
	switch o.Identity {
	case config.IdentitySPIRE:
		src, err := identity.NewSPIRESource(context.Background(), identity.SPIREOptions{
			Addr: o.SPIFFEEndpointSocket, ID: id, StartTimeout: o.SPIREStartTimeout, Metrics: metrics,
		})
		if err != nil {
			return nil, fmt.Errorf("SVID for %s from SPIRE: %w", id, err)
		}
		n.log.Info("identity from the SPIRE Workload API", "spiffe_id", id.String(), "socket", o.SPIFFEEndpointSocket)
		return src, nil
	case "", config.IdentityDevCA:
		if o.DataDir == "" {
			return nil, fmt.Errorf("the dev CA identity needs a data directory")
		}
		ca, err := identity.OpenCA(o.DataDir, td, identity.CAOptions{})
		if err != nil {
			return nil, fmt.Errorf("dev CA for %s: %w", td, err)
		}
		return identity.NewDevSource(ca, id, identity.DevSourceOptions{Metrics: metrics})
	default:
		return nil, fmt.Errorf("unknown identity source %q (want %s or %s)", o.Identity, config.IdentitySPIRE, config.IdentityDevCA)
	}
}
