// Package worker wires Temporal workers: which workflows and activities a
// registry's worker runs, the schedules created at start-up, and the
// namespace/search-attribute set-up an operator relies on.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/workflows"
)

// SearchAttributes are the custom Keyword attributes workflows upsert so
// operators can filter sagas in the Temporal UI (e.g.
// `SagaState='CompensationFailed'`).
var SearchAttributes = []string{"SagaState", "TransferID", "AgentDID", "SourceRegistry", "TargetRegistry"}

// KeywordListAttributes are the custom KeywordList attributes (the
// transfer IDs a settlement batch carries).
var KeywordListAttributes = []string{"TransferIDs"}

// Deps are what a registry's activities need.
type Deps struct {
	Sweeper *activities.Sweeper
	Holds   *activities.HoldSweeper // nil on nodes without a TEG
	Bonds   *activities.Bonds       // nil unless the node has the registry and TEG roles
	Staking *activities.Staking     // nil on nodes without a TEG
	// Settlement and PrepareSweep run cross-registry transfers (nil on
	// nodes without a TEG).
	Settlement   *activities.Settlement
	PrepareSweep *activities.PrepareSweep
}

// Options configure a registry worker.
type Options struct {
	Registry  string
	TaskQueue string
	// IdempotencyRetention is how long Idempotency-Key records are kept.
	IdempotencyRetention time.Duration
	Log                  *slog.Logger
}

// Start registers the registry's workflows and activities on a worker for
// its task queue, starts it and makes sure its schedules exist. Stop the
// returned worker on shutdown.
func Start(ctx context.Context, c client.Client, o Options, d Deps) (sdkworker.Worker, error) {
	w := sdkworker.New(c, o.TaskQueue, sdkworker.Options{
		// Bounded concurrency: the node's Postgres pools are the real limit.
		MaxConcurrentActivityExecutionSize:      64,
		MaxConcurrentLocalActivityExecutionSize: 64,
		MaxConcurrentWorkflowTaskExecutionSize:  64,
	})
	w.RegisterWorkflowWithOptions(workflows.IdempotencySweep, workflow.RegisterOptions{Name: "IdempotencySweep"})
	w.RegisterActivity(d.Sweeper)
	w.RegisterWorkflowWithOptions(workflows.HoldExpirySweep, workflow.RegisterOptions{Name: "HoldExpirySweep"})
	if d.Holds != nil {
		w.RegisterActivity(d.Holds)
	}
	if d.Bonds != nil {
		w.RegisterWorkflowWithOptions(workflows.BondMaturation, workflow.RegisterOptions{Name: workflows.BondWorkflowName})
		w.RegisterActivity(d.Bonds)
	}
	if d.Staking != nil {
		registerStaking(w)
		w.RegisterActivity(d.Staking)
	}
	registerSettlement(w, d)
	if err := w.Start(); err != nil {
		return nil, fmt.Errorf("start worker on %s: %w", o.TaskQueue, err)
	}
	if err := EnsureSchedules(ctx, c, o, d.Holds != nil); err != nil {
		w.Stop()
		return nil, err
	}
	if d.Staking != nil {
		if err := EnsureStakingSchedule(ctx, c, o); err != nil {
			w.Stop()
			return nil, err
		}
	}
	if d.PrepareSweep != nil {
		if err := EnsurePrepareSweepSchedule(ctx, c, o); err != nil {
			w.Stop()
			return nil, err
		}
	}
	return w, nil
}

// IdempotencySweepScheduleID names the registry's hourly sweep schedule.
func IdempotencySweepScheduleID(registry string) string { return "idempotency-sweep-" + registry }

// EnsureSchedules creates the registry's schedules if they do not exist yet
// (idempotent across restarts; an existing schedule is left as the operator
// may have paused or edited it).
func EnsureSchedules(ctx context.Context, c client.Client, o Options, holds bool) error {
	retention := o.IdempotencyRetention
	if retention < workflows.MinIdempotencyRetention {
		retention = workflows.MinIdempotencyRetention
	}
	id := IdempotencySweepScheduleID(o.Registry)
	_, err := c.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID: id,
		Spec: client.ScheduleSpec{
			CronExpressions: []string{"17 * * * *"},
			TimeZoneName:    "UTC",
		},
		// A sweep missed while the worker was down is simply done by the
		// next one; no catch-up storm.
		CatchupWindow: time.Hour,
		Overlap:       enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		Action: &client.ScheduleWorkflowAction{
			ID:                       id,
			Workflow:                 "IdempotencySweep",
			TaskQueue:                o.TaskQueue,
			Args:                     []any{workflows.IdempotencySweepInput{Retention: retention}},
			WorkflowExecutionTimeout: 30 * time.Minute,
		},
	})
	if err != nil && !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return fmt.Errorf("create schedule %s: %w", id, err)
	}
	if !holds {
		return nil
	}
	hid := HoldExpiryScheduleID(o.Registry)
	_, err = c.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID:            hid,
		Spec:          client.ScheduleSpec{CronExpressions: []string{"* * * * *"}, TimeZoneName: "UTC"},
		CatchupWindow: time.Minute,
		Overlap:       enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		Action: &client.ScheduleWorkflowAction{
			ID: hid, Workflow: "HoldExpirySweep", TaskQueue: o.TaskQueue,
			Args: []any{workflows.HoldExpirySweepInput{}}, WorkflowExecutionTimeout: 5 * time.Minute,
		},
	})
	if err != nil && !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return fmt.Errorf("create schedule %s: %w", hid, err)
	}
	return nil
}

// HoldExpiryScheduleID names the registry's per-minute hold expiry sweep.
func HoldExpiryScheduleID(registry string) string { return "hold-expiry-" + registry }

// EnsureNamespace registers namespace (retention 72 h) and the custom search
// attributes on it; both steps are no-ops when already done. Used against
// external Temporal clusters; the embedded dev server is started with them.
func EnsureNamespace(ctx context.Context, hostPort, namespace string) error {
	c, err := client.DialContext(ctx, client.Options{HostPort: hostPort, Logger: tlog.NewStructuredLogger(slog.New(slog.DiscardHandler))})
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.WorkflowService().RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{
		Namespace:                        namespace,
		WorkflowExecutionRetentionPeriod: durationpb.New(72 * time.Hour),
	})
	var exists *serviceerror.NamespaceAlreadyExists
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("register namespace %s: %w", namespace, err)
	}
	attrs := map[string]enumspb.IndexedValueType{}
	for _, sa := range SearchAttributes {
		attrs[sa] = enumspb.INDEXED_VALUE_TYPE_KEYWORD
	}
	for _, sa := range KeywordListAttributes {
		attrs[sa] = enumspb.INDEXED_VALUE_TYPE_KEYWORD_LIST
	}
	// A freshly registered namespace can take a moment to be visible to the
	// operator service; retry briefly.
	var lastErr error
	for i := 0; i < 20; i++ {
		_, lastErr = c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
			Namespace: namespace, SearchAttributes: attrs,
		})
		var already *serviceerror.AlreadyExists
		if lastErr == nil || errors.As(lastErr, &already) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return fmt.Errorf("search attributes on %s: %w", namespace, lastErr)
}
