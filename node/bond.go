package node

import (
	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/config"
	"github.com/theprotocol-dev/theprotocol/registry"
)

// BondSettings are the reputation bond's maturity criteria (whitepaper
// §5.5), read and validated by config and handed in through Options. The
// bond itself is wired in mountRegistry (packages onboarding and bonds).
type BondSettings = config.BondSettings

// bondActivities are the BondMaturation workflow's activities. The node's
// criteria are the floor every check applies, whatever a workflow's input
// asks for.
func (n *Node) bondActivities() *activities.BondMaturation {
	b := n.opts.BondSettings
	return &activities.BondMaturation{Ledger: n.bonds, Criteria: n.bonds, Now: n.opts.Now,
		Policy: registry.BondCriteria{MinAge: b.MinAge, MinTransfers: b.MinTransfers, MinTrustBps: b.MinTrust}}
}
