package node

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"
)

type fakeSagaCounter map[string]int64 // state → running sagas; absent: error

func (f fakeSagaCounter) CountWorkflow(_ context.Context, req *workflowservice.CountWorkflowExecutionsRequest) (*workflowservice.CountWorkflowExecutionsResponse, error) {
	if req.GetNamespace() != "alpha-main" || !strings.Contains(req.GetQuery(), "ExecutionStatus = 'Running'") {
		return nil, errors.New("wrong namespace or query")
	}
	for state, n := range f {
		if strings.Contains(req.GetQuery(), "SagaState = '"+state+"'") {
			return &workflowservice.CountWorkflowExecutionsResponse{Count: n}, nil
		}
	}
	return nil, errors.New("visibility unavailable")
}

// TestSagaCollectorExportsRunningSagasByState: each open state is counted
// in the node's namespace among running sagas; a state Temporal cannot
// count is left out (not reported as 0) and the failure counted.
func TestSagaCollectorExportsRunningSagasByState(t *testing.T) {
	c := newSagaCollector(fakeSagaCounter{"Preparing": 3, "Committing": 0, "CompensationFailed": 2}, "alpha-main", slog.New(slog.DiscardHandler))
	want := `
# HELP xfer_sagas Running cross-registry settlement sagas coordinated by this registry, by SagaState (Temporal visibility, read at scrape).
# TYPE xfer_sagas gauge
xfer_sagas{state="CompensationFailed"} 2
xfer_sagas{state="Committing"} 0
xfer_sagas{state="Preparing"} 3
# HELP xfer_saga_count_failures_total Scrapes where Temporal visibility could not count the sagas of a state.
# TYPE xfer_saga_count_failures_total counter
xfer_saga_count_failures_total 1
`
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(want)))
}
