package node

import (
	"github.com/gin-gonic/gin"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/api/ledgerapi"
	"github.com/theprotocol-dev/theprotocol/proposals"
)

// proposalService is the governance flow of this node's TEG (nil without
// one).
func (n *Node) proposalService() *proposals.Service {
	if n.Ledger == nil {
		return nil
	}
	svc := &proposals.Service{
		Ledger: n.Ledger, Registry: n.opts.Registry.ID, Temporal: n.Temporal,
		TaskQueue: n.opts.Registry.TaskQueue(), Limits: n.opts.GovernanceSettings.Limits,
	}
	if n.opts.GovernanceSettings.SqrtByDeveloper {
		// The agent → developer map is the registry's: the option needs
		// the registry on this node.
		if n.RegistryStore != nil {
			svc.Developers = n.RegistryStore
		} else {
			n.log.Warn("governance-sqrt-by-developer needs the registry role on this node; grouping by agent")
		}
	}
	return svc
}

// mountGovernance serves the governance routes on nodes with a TEG. Only
// the mainframe's admins may veto (ledgerapi.OperatorVeto).
func (n *Node) mountGovernance(v1 *gin.RouterGroup) {
	svc := n.proposalService()
	if svc == nil {
		return
	}
	ledgerapi.NewGovernance(ledgerapi.GovernanceOptions{
		Store: n.Ledger, Proposals: svc, Idempotency: n.ledgerIdem, Auth: n.Auth, Now: n.opts.Now,
		Veto: ledgerapi.OperatorVeto{Mainframe: n.opts.Registry.Mainframe},
	}).Mount(v1)
	if fed := n.federationService(); fed != nil {
		ledgerapi.NewFederation(ledgerapi.FederationOptions{
			Store: n.Ledger, Elevator: fed, Idempotency: n.ledgerIdem, Auth: n.Auth, Now: n.opts.Now,
			Veto: ledgerapi.OperatorVeto{Mainframe: n.opts.Registry.Mainframe},
		}).Mount(v1)
	}
}

// governanceActivities are the worker's governance activities (nil
// without a TEG).
func (n *Node) governanceActivities() *activities.Governance {
	svc := n.proposalService()
	if svc == nil {
		return nil
	}
	return &activities.Governance{Ledger: n.Ledger, Starter: svc}
}
