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
