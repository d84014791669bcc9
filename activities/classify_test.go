package activities_test

import (
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/apperr"
)

// errNetwork stands for an infrastructure failure that is not an
// *apperr.Error (a reset connection, a pool timeout).
var errNetwork = errors.New("connection reset by peer")

// retryable marks a case whose error must come back retryable.
const retryable = ""

// errorCase is a port's error and how the activity must classify it:
// retryable, or non-retryable with one of the activities' error types
// (those the workflows list in NonRetryableErrorTypes).
type errorCase struct {
	name         string
	portErr      error
	nonRetryable string // the ApplicationError type, or retryable
}

// codes builds one case per code, each classified as nonRetryable.
func codes(nonRetryable string, cs ...apperr.Code) []errorCase {
	out := make([]errorCase, len(cs))
	for i, c := range cs {
		out[i] = errorCase{name: string(c), portErr: apperr.New(c, "from the port"), nonRetryable: nonRetryable}
	}
	return out
}

// ourTypes are the error types the workflows treat as final.
var ourTypes = []string{activities.ErrTypeBondNotFound, activities.ErrTypeBondNotDeregistered, activities.ErrTypePeerRefused, activities.ErrTypeXferNotFound, activities.ErrTypeXferRefused, activities.ErrTypeStakingInvalid, activities.ErrTypeDisputeInvalid, activities.ErrTypeReputationRunInvalid}

var quiet = tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))

// execute runs fn, a method of acts, in Temporal's activity test
// environment: its error comes back as a workflow would see it, through
// the failure converter.
func execute(t *testing.T, acts any, fn any, args ...any) error {
	t.Helper()
	_, err := activityEnv(acts).ExecuteActivity(fn, args...)
	return err
}

func activityEnv(acts any) *testsuite.TestActivityEnvironment {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(quiet)
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	return env
}

// requireClass asserts err is the ApplicationError c asks for: flagged
// non-retryable with c's type, or retryable with a type no workflow treats
// as final.
func requireClass(t *testing.T, c errorCase, err error) {
	t.Helper()
	if c.portErr == nil {
		require.NoError(t, err)
		return
	}
	var ae *temporal.ApplicationError
	require.ErrorAs(t, err, &ae, "%s: %v", c.name, err)
	if c.nonRetryable != retryable {
		require.True(t, ae.NonRetryable(), "%s: %v must not be retried", c.name, err)
		require.Equal(t, c.nonRetryable, ae.Type(), c.name)
		return
	}
	require.False(t, ae.NonRetryable(), "%s: %v must be retried", c.name, err)
	require.NotContains(t, ourTypes, ae.Type(), "%s: a retryable error carries none of the final types", c.name)
	require.Contains(t, ae.Error(), c.portErr.Error(), "%s: the cause is kept", c.name)
}

// runResult runs fn like execute and decodes its result.
func runResult[R any](t *testing.T, acts any, fn any, args ...any) (R, error) {
	t.Helper()
	var out R
	v, err := activityEnv(acts).ExecuteActivity(fn, args...)
	if err != nil {
		return out, err
	}
	require.NoError(t, v.Get(&out))
	return out, nil
}
