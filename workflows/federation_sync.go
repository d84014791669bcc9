package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/theprotocol-dev/theprotocol/activities"
)

// FederationSyncName is the card sync's registered workflow name.
const FederationSyncName = "FederationSync"

// FederationSyncFamily pulls each active peer's signed agent cards, one
// long-running workflow per peer, on nodes with the registry role.
var FederationSyncFamily = Family{
	Name:       "federation-sync",
	Workflows:  []Workflow{{Name: FederationSyncName, Func: FederationSync}},
	Activities: []any{(*activities.FederationSync)(nil)},
	Histories:  "federation-sync-*.json",
}

// FederationSyncWorkflowID is the one sync of registry with peer.
func FederationSyncWorkflowID(registry, peer string) string {
	return "federation-sync-" + registry + "-" + peer
}

// FederationSyncInput names the peer; the cursor lives in the registry's
// database with the cards it covers, not here.
type FederationSyncInput struct {
	Peer string
	// Interval between pulls when the peer had nothing more (default 10 s).
	Interval time.Duration
	// MaxPulls before the workflow continues as new (default 200), which
	// bounds its history.
	MaxPulls int
}

// FederationSync pulls peer's card feed until the peer's licence is no
// longer active here (then it ends; the node starts it again when the
// peer is reinstated). A full page is followed at once by the next; an
// exhausted feed waits Interval. A failed pull (the peer unreachable, or
// refusing us) waits Interval too and tries again: the sync never gives
// up on an active peer.
func FederationSync(ctx workflow.Context, in FederationSyncInput) error {
	if in.Interval <= 0 {
		in.Interval = 10 * time.Second
	}
	if in.MaxPulls <= 0 || in.MaxPulls > 1000 {
		in.MaxPulls = 200
	}
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 10 * time.Second, MaximumAttempts: 3},
	})
	var a *activities.FederationSync
	for range in.MaxPulls {
		var res activities.FederationPullResult
		err := workflow.ExecuteActivity(ctx, a.PullCards, in.Peer).Get(ctx, &res)
		if err == nil && !res.Active {
			workflow.GetLogger(ctx).Info("peer no longer active: card sync stops", "peer", in.Peer)
			return nil
		}
		if err == nil && res.More {
			continue
		}
		if err != nil {
			workflow.GetLogger(ctx).Warn("card pull failed", "peer", in.Peer, "err", err)
		}
		if err := workflow.Sleep(ctx, in.Interval); err != nil {
			return err
		}
	}
	return workflow.NewContinueAsNewError(ctx, FederationSync, in)
}
