package activities

import (
	"context"

	"go.temporal.io/sdk/temporal"

	"github.com/theprotocol-dev/theprotocol/apperr"
)

// ErrTypeReputationRunInvalid marks a run the service refuses for good (no
// ID): not retryable.
const ErrTypeReputationRunInvalid = "ReputationRunInvalid"

// ReputationRunResult is what one reputation run computed.
type ReputationRunResult struct {
	RunID      string
	Seq        int64
	Agents     int
	Edges      int
	Iterations int
	Converged  bool
	Digest     string // hex SHA-256 of the score vector
	Merged     int64  // events merged since the previous run
	Breaches   int    // agents flagged below the enforcement floor
}

// ReputationRunner computes and stores one run (reputation.Service via
// the node), idempotently on the run ID.
type ReputationRunner interface {
	RunReputation(ctx context.Context, runID string) (ReputationRunResult, error)
}

// ReputationRun is the ReputationRun workflow's activity.
type ReputationRun struct {
	Runner ReputationRunner
}

// ComputeReputation runs the reputation run runID. A retry after a crash,
// or a second start of the same workflow, returns the stored run; a run
// that lost the race to continue the previous one (Conflict) is retried
// and then continues the newer run.
func (r *ReputationRun) ComputeReputation(ctx context.Context, runID string) (ReputationRunResult, error) {
	res, err := r.Runner.RunReputation(ctx, runID)
	if apperr.Is(err, apperr.Invalid) {
		return res, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeReputationRunInvalid, err)
	}
	return res, err
}
