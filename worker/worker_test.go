package worker_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/testenv"
	"github.com/theprotocol-dev/theprotocol/worker"
	"github.com/theprotocol-dev/theprotocol/workflows"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// The sweep runs on the real dev server against real databases: records
// older than the retention go, newer ones stay.
func TestIdempotencySweepEndToEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	regDB := testenv.NewDB(t, db.RoleRegistry)
	tegDB := testenv.NewDB(t, db.RoleTEG)
	tc := testenv.NewTemporal(t)

	now := time.Now()
	stores := []*db.IdempotencyStore{db.NewIdempotencyStore(regDB.Pool), db.NewIdempotencyStore(tegDB.Pool)}
	for _, s := range stores {
		for i, age := range []time.Duration{72 * time.Hour, 50 * time.Hour, time.Hour} {
			claimed, _, err := s.Claim(ctx, "dev:1", string(rune('a'+i)), []byte("h"), "POST", "/x", now.Add(-age))
			require.NoError(t, err)
			require.True(t, claimed)
		}
	}
	w, err := worker.Start(ctx, tc.Client, worker.Options{Registry: "sweeptest-" + tc.TaskQueue, TaskQueue: tc.TaskQueue},
		&activities.Sweeper{Stores: []activities.IdempotencySweeper{stores[0], stores[1]}})
	require.NoError(t, err)
	t.Cleanup(w.Stop)
	t.Cleanup(func() {
		_ = tc.Client.ScheduleClient().GetHandle(context.Background(), worker.IdempotencySweepScheduleID("sweeptest-"+tc.TaskQueue)).Delete(context.Background())
	})

	run, err := tc.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "sweep-" + tc.TaskQueue, TaskQueue: tc.TaskQueue},
		workflows.IdempotencySweepName, workflows.IdempotencySweepInput{Retention: 48 * time.Hour, BatchSize: 1})
	require.NoError(t, err)
	var res workflows.IdempotencySweepResult
	require.NoError(t, run.Get(ctx, &res))
	require.EqualValues(t, 2, res.Deleted, "two batches of one per store")

	for _, pool := range []*testenv.DB{&regDB, &tegDB} {
		var keys []string
		rows, err := pool.Pool.Query(ctx, `SELECT key FROM idempotency_keys ORDER BY key`)
		require.NoError(t, err)
		for rows.Next() {
			var k string
			require.NoError(t, rows.Scan(&k))
			keys = append(keys, k)
		}
		require.NoError(t, rows.Err())
		require.Equal(t, []string{"c"}, keys, "only the record younger than the retention survives")
	}
}

type noHolds struct{}

func (noHolds) ExpireHolds(context.Context, int) (int, error) { return 0, nil }

// Start schedules the families it runs and only those; a second creation
// of an existing schedule is tolerated, and an activity struct no family
// declares stops the start.
func TestStartSchedulesTheFamiliesItRuns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tc := testenv.NewTemporal(t)
	o := worker.Options{Registry: "famtest-" + tc.TaskQueue, TaskQueue: tc.TaskQueue}
	sc := tc.Client.ScheduleClient()
	t.Cleanup(func() {
		for _, f := range workflows.Families {
			for _, s := range f.Schedules {
				_ = sc.GetHandle(context.Background(), s.ID(o.Registry)).Delete(context.Background())
			}
		}
	})

	type undeclared struct{}
	_, err := worker.Start(ctx, tc.Client, o, &activities.Sweeper{}, &undeclared{})
	require.ErrorContains(t, err, "no workflow family declares activity struct")
	_, err = sc.GetHandle(ctx, worker.IdempotencySweepScheduleID(o.Registry)).Describe(ctx)
	require.Error(t, err, "a refused start creates nothing")

	w, err := worker.Start(ctx, tc.Client, o, &activities.Sweeper{}, &activities.HoldSweeper{Expirer: noHolds{}}, (*activities.Staking)(nil))
	require.NoError(t, err)
	t.Cleanup(w.Stop)
	for id, wf := range map[string]string{
		worker.IdempotencySweepScheduleID(o.Registry): workflows.IdempotencySweepName,
		worker.HoldExpiryScheduleID(o.Registry):       workflows.HoldExpirySweepName,
	} {
		desc, err := sc.GetHandle(ctx, id).Describe(ctx)
		require.NoError(t, err, id)
		action, ok := desc.Schedule.Action.(*client.ScheduleWorkflowAction)
		require.True(t, ok, "%T", desc.Schedule.Action)
		require.Equal(t, wf, action.Workflow)
		require.Equal(t, tc.TaskQueue, action.TaskQueue)
	}
	for _, id := range []string{worker.StakingRewardsScheduleID(o.Registry), worker.PrepareSweepScheduleID(o.Registry)} {
		_, err := sc.GetHandle(ctx, id).Describe(ctx)
		require.Error(t, err, "%s belongs to a family this worker does not run", id)
	}
	require.NoError(t, worker.EnsureSchedules(ctx, tc.Client, o, workflows.IdempotencySweepFamily, workflows.HoldExpiryFamily), "existing schedules are left alone")
}
