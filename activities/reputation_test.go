package activities_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/apperr"
)

type reputationRunner struct{ err error }

func (r reputationRunner) RunReputation(_ context.Context, id string) (activities.ReputationRunResult, error) {
	return activities.ReputationRunResult{RunID: id, Agents: 3}, r.err
}

// A run without an ID is refused for good; everything else (the
// EventStore down, a lost race to continue the previous run) is retried.
func TestComputeReputationClassifiesErrors(t *testing.T) {
	cases := append(codes(activities.ErrTypeReputationRunInvalid, apperr.Invalid),
		errorCase{name: "network", portErr: errNetwork, nonRetryable: retryable},
		errorCase{name: "conflict", portErr: apperr.New(apperr.Conflict, "another run continued it"), nonRetryable: retryable},
		errorCase{name: "unavailable", portErr: apperr.New(apperr.Unavailable, "down"), nonRetryable: retryable})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := &activities.ReputationRun{Runner: reputationRunner{err: c.portErr}}
			requireClass(t, c, execute(t, r, r.ComputeReputation, "run-1"))
		})
	}
	r := &activities.ReputationRun{Runner: reputationRunner{}}
	res, err := runResult[activities.ReputationRunResult](t, r, r.ComputeReputation, "run-1")
	require.NoError(t, err)
	require.Equal(t, "run-1", res.RunID)
}
