package workflows

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"

	"github.com/theprotocol-dev/theprotocol/activities"
)

func TestIdempotencySweepLoopsUntilAShortBatch(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(quietLogger)
	env := s.NewTestWorkflowEnvironment()
	start := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	env.SetStartTime(start)
	var a *activities.Sweeper
	env.RegisterActivity(a)
	var cutoffs []time.Time
	returns := []int64{50, 50, 7}
	call := 0
	env.OnActivity(a.SweepIdempotencyKeys, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SweepBatch) (int64, error) {
			cutoffs = append(cutoffs, in.Cutoff)
			require.EqualValues(t, 50, in.Limit)
			n := returns[call]
			call++
			return n, nil
		})
	env.ExecuteWorkflow(IdempotencySweep, IdempotencySweepInput{Retention: time.Hour, BatchSize: 50})
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var res IdempotencySweepResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, IdempotencySweepResult{Deleted: 107, Batches: 3}, res)
	require.Len(t, cutoffs, 3)
	// Retention below the 24 h floor is raised to it, and every batch uses
	// the cutoff fixed at the start of the run.
	for _, c := range cutoffs {
		require.Equal(t, start.Add(-MinIdempotencyRetention), c.UTC())
	}
}

func TestIdempotencySweepIsBoundedPerRun(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(quietLogger)
	env := s.NewTestWorkflowEnvironment()
	var a *activities.Sweeper
	env.RegisterActivity(a)
	env.OnActivity(a.SweepIdempotencyKeys, mock.Anything, mock.Anything).Return(int64(10), nil)
	env.ExecuteWorkflow(IdempotencySweep, IdempotencySweepInput{Retention: 48 * time.Hour, BatchSize: 10, MaxBatches: 4})
	require.NoError(t, env.GetWorkflowError())
	var res IdempotencySweepResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, IdempotencySweepResult{Deleted: 40, Batches: 4}, res)
}

// quietLogger drops the test environment's very chatty debug output.
var quietLogger = tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
