package node

import (
	"context"

	"github.com/gin-gonic/gin"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/api/disputeapi"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/disputes"
	"github.com/theprotocol-dev/theprotocol/events"
	"github.com/theprotocol-dev/theprotocol/ingest"
)

// mountDisputes serves the dispute routes on nodes with a TEG. Only the
// mainframe's TEG records disputes (it alone can mint compensation); the
// others answer 422 failed_precondition.
func (n *Node) mountDisputes(v1 *gin.RouterGroup) {
	if n.Ledger == nil {
		return
	}
	n.disputeMetrics = disputes.NewMetrics(n.Metrics)
	flow := &disputes.Service{Ledger: n.Ledger, Temporal: n.Temporal, TaskQueue: n.opts.Registry.TaskQueue(), Rules: n.opts.DisputeSettings.Rules(),
		Metrics: n.disputeMetrics}
	disputeapi.New(disputeapi.Options{Flow: flow, Idempotency: n.ledgerIdem, Auth: n.Auth, Now: n.opts.Now}).Mount(v1)
}

// disputeActivities are the Dispute workflow's activities (nil without a
// TEG: the family is skipped).
func (n *Node) disputeActivities() *activities.Disputes {
	if n.Ledger == nil {
		return nil
	}
	return &activities.Disputes{Ledger: n.Ledger}
}

// startDisputeEnforcer runs the reactor that slashes a losing respondent's
// stake, on the node hosting both the frame's EventStore and a TEG (the
// mainframe, where disputes are recorded).
func (n *Node) startDisputeEnforcer(ctx context.Context, topic string) {
	es, slasher := n.Pools[db.RoleEventStore], n.disputeSlasher()
	if es == nil || slasher == nil {
		return
	}
	o := n.opts
	e := &disputes.Enforcer{Ledger: slasher, Registry: o.Registry.ID, Log: n.log, Metrics: n.disputeMetrics}
	r := ingest.Reactor{Name: "dispute-enforcer", Types: []string{events.TypeDisputeRuled}, Handle: e.Handle}
	kafka := o.KafkaOpts
	n.goBackground(func() { _ = ingest.RunReactor(ctx, r, es, o.Frame.ID, o.KafkaBrokers, topic, n.log, kafka...) })
}
