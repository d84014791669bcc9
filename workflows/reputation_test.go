package workflows

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/theprotocol-dev/theprotocol/activities"
)

// The run is named by its workflow ID (the schedule's ID plus the nominal
// time), so a retried activity computes the same run; a transient failure
// is retried, a refusal is not.
func TestReputationRunNamesTheRunByWorkflowID(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(quietLogger)
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(ReputationRun, workflow.RegisterOptions{Name: ReputationRunName})
	var a *activities.ReputationRun
	env.RegisterActivity(a)
	calls := 0
	env.OnActivity(a.ComputeReputation, mock.Anything, "reputation-run-alpha-main-2026-12-06T10:00:00Z").Return(
		func(_ context.Context, id string) (activities.ReputationRunResult, error) {
			calls++
			if calls == 1 {
				return activities.ReputationRunResult{}, errors.New("eventstore down")
			}
			return activities.ReputationRunResult{RunID: id, Seq: 4, Agents: 10, Converged: true}, nil
		})
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: "reputation-run-alpha-main-2026-12-06T10:00:00Z"})
	env.ExecuteWorkflow(ReputationRunName, ReputationRunInput{})
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var res activities.ReputationRunResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, "reputation-run-alpha-main-2026-12-06T10:00:00Z", res.RunID)
	require.Equal(t, 2, calls, "one retry after the transient failure")
}

func TestReputationRunStopsOnRefusal(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(quietLogger)
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(ReputationRun, workflow.RegisterOptions{Name: ReputationRunName})
	var a *activities.ReputationRun
	env.RegisterActivity(a)
	calls := 0
	env.OnActivity(a.ComputeReputation, mock.Anything, mock.Anything).Return(
		func(context.Context, string) (activities.ReputationRunResult, error) {
			calls++
			return activities.ReputationRunResult{}, temporal.NewNonRetryableApplicationError("no", activities.ErrTypeReputationRunInvalid, nil)
		})
	env.ExecuteWorkflow(ReputationRunName, ReputationRunInput{})
	require.Error(t, env.GetWorkflowError())
	require.Equal(t, 1, calls)
}
