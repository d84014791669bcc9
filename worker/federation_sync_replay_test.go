package worker_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/testenv"
	"github.com/theprotocol-dev/theprotocol/workflows"
)

// scriptedPuller answers each peer's pulls from a script; past its end the
// peer is no longer active.
type scriptedPuller struct {
	mu      sync.Mutex
	scripts map[string][]activities.FederationPullResult
}

func (p *scriptedPuller) PullOnce(_ context.Context, peer string) (activities.FederationPullResult, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.scripts[peer]
	if len(s) == 0 {
		return activities.FederationPullResult{}, nil
	}
	p.scripts[peer] = s[1:]
	return s[0], nil
}

var scriptedPulls = &scriptedPuller{scripts: map[string][]activities.FederationPullResult{
	// A full page, then an exhausted feed twice: the run continues as new
	// after MaxPulls; the next run finds the peer gone.
	"peer-continued": {
		{Active: true, More: true, Received: 2, Stored: 2, Cursor: 2},
		{Active: true, Received: 1, Stored: 1, Cursor: 3},
		{Active: true, Cursor: 3},
	},
	// One exhausted pull, then the peer's licence is suspended.
	"peer-stopped": {{Active: true, Cursor: 0}},
}}

func recordFederationSyncHistories(t *testing.T, ctx context.Context, tc testenv.Temporal, record func(name, id string, wf string, arg any, during func())) {
	// The first run, which ends by continuing as new (Get follows the
	// chain, so the run ID is taken before it).
	t.Run("federation-sync-continued", func(t *testing.T) {
		id := workflows.FederationSyncWorkflowID("replay", "peer-continued")
		run, err := tc.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: tc.TaskQueue}, workflows.FederationSyncName,
			workflows.FederationSyncInput{Peer: "peer-continued", Interval: 100 * time.Millisecond, MaxPulls: 3})
		require.NoError(t, err)
		first := run.GetRunID()
		require.NoError(t, run.Get(ctx, nil))
		writeHistory(t, tc.Client, id, first, "federation-sync-continued")
	})
	record("federation-sync-stopped", workflows.FederationSyncWorkflowID("replay", "peer-stopped"), workflows.FederationSyncName,
		workflows.FederationSyncInput{Peer: "peer-stopped", Interval: 100 * time.Millisecond}, nil)
}
