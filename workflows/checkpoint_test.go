package workflows

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/theprotocol-dev/theprotocol/activities"
)

func TestBalanceCheckpointRetriesABusyRelay(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(quietLogger)
	env := s.NewTestWorkflowEnvironment()
	var a *activities.BalanceCheckpoints
	env.RegisterActivity(a)
	calls := 0
	env.OnActivity(a.WriteBalanceCheckpoint, mock.Anything).Return(func(context.Context) (activities.CheckpointResult, error) {
		calls++
		if calls < 3 {
			return activities.CheckpointResult{}, errors.New("relay busy")
		}
		return activities.CheckpointResult{Written: true, CoversSeq: 77}, nil
	})
	env.ExecuteWorkflow(BalanceCheckpoint)
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var res activities.CheckpointResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, activities.CheckpointResult{Written: true, CoversSeq: 77}, res)
	require.Equal(t, 3, calls)
}

func TestBalanceCheckpointGivesUpAfterItsAttempts(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(quietLogger)
	env := s.NewTestWorkflowEnvironment()
	var a *activities.BalanceCheckpoints
	env.RegisterActivity(a)
	env.OnActivity(a.WriteBalanceCheckpoint, mock.Anything).Return(activities.CheckpointResult{}, errors.New("relay behind"))
	env.ExecuteWorkflow(BalanceCheckpoint)
	require.True(t, env.IsWorkflowCompleted())
	require.ErrorContains(t, env.GetWorkflowError(), "relay behind")
}
