package node

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/theprotocol-dev/theprotocol/api/sagaapi"
	"github.com/theprotocol-dev/theprotocol/workflows"
)

// sagaCounter is the part of the Temporal client the saga gauge needs.
type sagaCounter interface {
	CountWorkflow(ctx context.Context, req *workflowservice.CountWorkflowExecutionsRequest) (*workflowservice.CountWorkflowExecutionsResponse, error)
}

// openSagaStates are the states a running settlement saga can be in. The
// finished ones (Committed, Aborted) only grow; their rate is the
// transfers' business, not an operator's.
var openSagaStates = []string{
	workflows.SagaPreparing, workflows.SagaCommitting, workflows.SagaCommitStalled, workflows.SagaCompensationFailed,
}

// sagaCollector exports xfer_sagas{state}: running settlement sagas of
// this registry's namespace by SagaState, counted by Temporal visibility
// at scrape time. Parked (CompensationFailed) and stalled (CommitStalled)
// sagas hold money until an operator acts, so they are alerted on. A
// state whose count fails is left out of the scrape (the alert rules
// treat a missing series as unknown, not as zero) and counted.
type sagaCollector struct {
	temporal  sagaCounter
	namespace string
	timeout   time.Duration
	log       *slog.Logger
	sagas     *prometheus.Desc
	failures  prometheus.Counter
}

func newSagaCollector(t sagaCounter, namespace string, log *slog.Logger) *sagaCollector {
	return &sagaCollector{
		temporal: t, namespace: namespace, timeout: 3 * time.Second, log: log,
		sagas: prometheus.NewDesc("xfer_sagas",
			"Running cross-registry settlement sagas coordinated by this registry, by SagaState (Temporal visibility, read at scrape).",
			[]string{"state"}, nil),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "xfer_saga_count_failures_total", Help: "Scrapes where Temporal visibility could not count the sagas of a state.",
		}),
	}
}

func (c *sagaCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.sagas
	c.failures.Describe(ch)
}

func (c *sagaCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	for _, state := range openSagaStates {
		resp, err := c.temporal.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{
			Namespace: c.namespace, Query: sagaapi.Query(state) + " AND ExecutionStatus = 'Running'",
		})
		if err != nil {
			c.failures.Inc()
			c.log.Debug("count sagas", "state", state, "err", err)
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.sagas, prometheus.GaugeValue, float64(resp.GetCount()), state)
	}
	c.failures.Collect(ch)
}
