package node

import (
	"context"

	"github.com/gin-gonic/gin"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/api/reputationapi"
	"github.com/theprotocol-dev/theprotocol/bonds"
	"github.com/theprotocol-dev/theprotocol/config"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/events"
	"github.com/theprotocol-dev/theprotocol/ingest"
	"github.com/theprotocol-dev/theprotocol/reputation"
	"github.com/theprotocol-dev/theprotocol/reputation/eigentrust"
	"github.com/theprotocol-dev/theprotocol/workflows"
)

// ReputationSettings configure the reputation runs (config.ReputationSettings).
type ReputationSettings = config.ReputationSettings

// mountReputation serves trust scores and runs on the node hosting the
// frame's EventStore, where the runs compute, and points the reputation
// bond's trust criterion at the scores: here directly, on other nodes
// through the EventStore node's API.
func (n *Node) mountReputation(v1 *gin.RouterGroup) {
	o := n.opts
	if pool := n.Pools[db.RoleEventStore]; pool != nil {
		rs := o.ReputationSettings
		params := eigentrust.DefaultParams()
		params.PairCapUnits, params.MaxIterations, params.PreTrusted = rs.PairCapUnits, rs.MaxIterations, rs.PreTrusted
		store := ingest.NewReputationStore(pool, db.NewOutboxWriter(o.Frame.ID, o.Registry.ID, events.SourceEventStore, n.policies[db.RoleEventStore].Guard()))
		n.reputation = &reputation.Service{Store: store, Params: params, BreachFloorBps: rs.BreachFloorBps,
			Metrics: reputation.NewMetrics(n.Metrics), Now: o.Now, Log: n.log}
		if rs.SlashOnBreach && n.Ledger != nil {
			n.reputation.Slasher = ledgerSlasher{n.Ledger}
		} else if rs.SlashOnBreach && n.split.teg != nil {
			n.reputation.Slasher = remoteSlasher{n.split.teg}
		}
		(&reputationapi.Handler{Store: store}).Mount(v1)
	}
	if n.bonds == nil {
		return
	}
	switch {
	case n.reputation != nil:
		n.bonds.Trust = n.reputation
	case o.EventStoreURL != "":
		n.bonds.Trust = &reputation.HTTPScorer{BaseURL: o.EventStoreURL}
	default:
		// No source of scores: bonds wait rather than mature on no
		// evidence.
		n.log.Warn("no EventStore to read trust scores from: reputation bonds will not pass the trust floor")
		n.bonds.Trust = bonds.FixedTrust(0)
	}
}

// ledgerSlasher slashes through the node's TEG: only agents whose stake
// this TEG holds lose any (others are recorded with no position).
type ledgerSlasher struct{ l *ledgerstore.Store }

func (s ledgerSlasher) SlashStake(ctx context.Context, agentDID, caseID, reason string) error {
	_, err := s.l.SlashStake(ctx, ledgerstore.SlashRequest{AgentDID: agentDID, CaseID: caseID, Reason: reason, Actor: "reputation"})
	return err
}

// reputationRunner adapts the service to the workflow's activity port.
type reputationRunner struct{ s *reputation.Service }

func (r reputationRunner) RunReputation(ctx context.Context, runID string) (activities.ReputationRunResult, error) {
	s, err := r.s.Run(ctx, runID)
	return activities.ReputationRunResult{RunID: s.RunID, Seq: s.Seq, Agents: s.Agents, Edges: s.Edges, Iterations: s.Iterations,
		Converged: s.Converged, Digest: s.Digest, Merged: s.Merged, Breaches: s.Breaches}, err
}

// reputationActivities are the ReputationRun workflow's activities (nil
// on nodes without the EventStore: the family runs only where it is).
func (n *Node) reputationActivities() []any {
	if n.reputation == nil {
		return nil
	}
	return []any{&activities.ReputationRun{Runner: reputationRunner{n.reputation}}}
}

// applyReputationCron sets the reputation schedule's cron when the
// configuration asks for another than the declared one (an operator's
// edit of the schedule otherwise stands).
func (n *Node) applyReputationCron(ctx context.Context) {
	cron := n.opts.ReputationSettings.Cron
	if n.reputation == nil || n.worker == nil || cron == "" || cron == workflows.ReputationSchedule.Cron {
		return
	}
	h := n.Temporal.ScheduleClient().GetHandle(ctx, workflows.ReputationSchedule.ID(n.opts.Registry.ID))
	err := h.Update(ctx, client.ScheduleUpdateOptions{DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
		if in.Description.Schedule.Spec == nil {
			return nil, temporal.ErrSkipScheduleUpdate
		}
		in.Description.Schedule.Spec = &client.ScheduleSpec{CronExpressions: []string{cron}, TimeZoneName: "UTC"}
		return &client.ScheduleUpdate{Schedule: &in.Description.Schedule}, nil
	}})
	if err != nil {
		n.log.Warn("reputation schedule cron", "cron", cron, "err", err)
	}
}
