package node

import (
	"github.com/gin-gonic/gin"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/api/ledgerapi"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/stakes"
	"github.com/theprotocol-dev/theprotocol/staking"
)

// mountStaking serves the staking routes on nodes with a TEG and
// registers the staking metrics.
func (n *Node) mountStaking(v1 *gin.RouterGroup) {
	if n.Ledger == nil {
		return
	}
	n.Metrics.MustRegister(ledgerstore.StakingCollectors()...)
	ledgerapi.NewStaking(ledgerapi.StakingOptions{
		Store: n.Ledger, Idempotency: n.ledgerIdem, Auth: n.Auth, Now: n.opts.Now, Curve: staking.DefaultCurve,
		Stakes: &stakes.Service{Ledger: n.Ledger, Registry: n.opts.Registry.ID, Temporal: n.Temporal, TaskQueue: n.opts.Registry.TaskQueue()},
	}).Mount(v1)
}

// stakingActivities are the worker's staking activities (nil without a TEG).
func (n *Node) stakingActivities() *activities.Staking {
	if n.Ledger == nil {
		return nil
	}
	return &activities.Staking{Ledger: n.Ledger, Curve: staking.DefaultCurve}
}
