package node

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/theprotocol-dev/theprotocol/api"
	"github.com/theprotocol-dev/theprotocol/api/registryapi"
	"github.com/theprotocol-dev/theprotocol/bonds"
	"github.com/theprotocol-dev/theprotocol/config"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/disputes"
	"github.com/theprotocol-dev/theprotocol/identity"
	"github.com/theprotocol-dev/theprotocol/split"
)

// Roles split across processes (docs/adr/0035): a registry's registry, TEG
// and EventStore may each run in a process of their own. What one role
// asked another in-process it then asks the other's process over mTLS
// (package split):
//
//   - a registry without its TEG runs the onboarding saga against the TEG's
//     process (accounts and the reputation bond; Options.Split.TEGMTLSURL);
//   - a TEG without its registry authenticates its API callers and answers
//     the bond workflow's agent checks through the registry's process
//     (Options.Split.RegistryMTLSURL), and runs the bond workflow's
//     activities itself;
//   - the mint gate, the relays and the bond's trust scores already reach a
//     remote EventStore (remoteSupplyGate, EventStoreURL);
//   - an EventStore without its TEG runs the dispute enforcer and the
//     reputation slasher against the TEG's process (Options.Split.TEGMTLSURL).

// splitWiring holds the clients of the roles that run elsewhere.
type splitWiring struct {
	teg      *split.TEGClient      // nil unless a TEG URL is configured and the role is elsewhere
	registry *split.RegistryClient // nil unless a registry URL is configured and the role is elsewhere
}

// prepareSplit checks that a process hosting only some of a registry's
// roles knows where the others are, and builds their clients (armed with
// the node's SVID once its mTLS source is up: armSplit).
func (n *Node) prepareSplit() error {
	o := n.opts // Split was validated with the other settings (settingsOrDefaults)
	hasReg, hasTEG := o.Registry.HasRole(config.RoleRegistry), o.Registry.HasRole(config.RoleTEG)
	if (!hasTEG && o.Split.TEGMTLSURL != "") || (!hasReg && o.Split.RegistryMTLSURL != "") {
		if o.DataDir == "" && o.Identity != config.IdentitySPIRE {
			return fmt.Errorf("node %s: its roles run split and talk over mTLS, which needs a data directory (dev CA) or SPIRE", o.Registry.ID)
		}
	}
	var err error
	if !hasTEG && o.Split.TEGMTLSURL != "" {
		if n.split.teg, err = split.NewTEGClient(o.Split.TEGMTLSURL); err != nil {
			return err
		}
	}
	if !hasReg && o.Split.RegistryMTLSURL != "" {
		if n.split.registry, err = split.NewRegistryClient(o.Split.RegistryMTLSURL); err != nil {
			return err
		}
	}
	return nil
}

// splitChecks are /readyz probes of the registry's other processes this
// one depends on: named after the role, failing while it does not answer.
func (n *Node) splitChecks() []api.Check {
	var checks []api.Check
	if c := n.split.teg; c != nil {
		checks = append(checks, api.Check{Name: "teg", Fn: c.Ping})
	}
	if c := n.split.registry; c != nil {
		checks = append(checks, api.Check{Name: "registry", Fn: c.Ping})
	}
	return checks
}

// wireSplit, after the registry role is mounted (or not), gives a node
// without the registry role the registry's authentication and, on a TEG,
// the bond workflow's activities with the registry's agent checks.
func (n *Node) wireSplit() {
	reg := n.split.registry
	if reg == nil {
		return
	}
	n.Auth = reg.Authenticate
	if n.Ledger != nil && n.bonds == nil {
		n.bonds = &bonds.Service{Ledger: n.Ledger, Agents: reg, Temporal: n.Temporal, Trust: bonds.FixedTrust(10000), Log: n.log}
	}
}

// armSplit gives the clients their mTLS client: the server must present
// the registry's own identity.
func (n *Node) armSplit() {
	if n.TLS == nil || (n.split.teg == nil && n.split.registry == nil) {
		return
	}
	self, err := n.selfID()
	if err != nil {
		n.log.Error("split roles: own SPIFFE ID", "err", err)
		return
	}
	cl := n.TLS.HTTPClient(identity.AuthorizeID(self), identity.HTTPClientOptions{Timeout: 10 * time.Second, MaxIdleConnsPerHost: 32})
	if n.split.teg != nil {
		n.split.teg.Arm(cl)
	}
	if n.split.registry != nil {
		n.split.registry.Arm(cl)
	}
}

// attachSplitTLS serves this node's roles to the registry's other
// processes on the mTLS listener, to the registry's own identity only.
func (n *Node) attachSplitTLS(mux *http.ServeMux) {
	self, err := n.selfID()
	if err != nil {
		return
	}
	if n.Ledger != nil {
		srv := &split.TEGServer{Ledger: n.Ledger, Slasher: n.Ledger, Self: self}
		if n.bonds != nil {
			srv.Bonds = n.bonds
		}
		srv.Register(mux)
	}
	if n.RegistryStore != nil {
		(&split.RegistryServer{Auth: n.Auth, Agents: n.RegistryStore, Self: self}).Register(mux)
	}
}

// bondStatuses answers the registry's bond route: this node's bonds, or
// the TEG's process (nil: the route answers 404).
func (n *Node) bondStatuses() registryapi.BondStatuses {
	if n.bonds != nil {
		return n.bonds
	}
	if n.split.teg != nil {
		return n.split.teg
	}
	return nil
}

// disputeSlasher is the TEG the dispute enforcer reads disputes from and
// slashes on: this node's, or its registry's TEG process (nil: neither).
func (n *Node) disputeSlasher() disputes.Slasher {
	if n.Ledger != nil {
		return n.Ledger
	}
	if n.split.teg != nil {
		return n.split.teg
	}
	return nil
}

// remoteSlasher is the reputation slasher through the TEG's process.
type remoteSlasher struct{ c *split.TEGClient }

func (s remoteSlasher) SlashStake(ctx context.Context, agentDID, caseID, reason string) error {
	_, err := s.c.SlashStake(ctx, ledgerstore.SlashRequest{AgentDID: agentDID, CaseID: caseID, Reason: reason, Actor: "reputation"})
	return err
}

// selfID is the SPIFFE ID every process of this registry presents.
func (n *Node) selfID() (spiffeid.ID, error) {
	td, err := identity.FrameTrustDomain(n.opts.Frame)
	if err != nil {
		return spiffeid.ID{}, err
	}
	return identity.TEGID(td, n.opts.Registry.ID)
}
