package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/theprotocol-dev/theprotocol/workflows"
)

// registerSettlement registers the cross-registry settlement workflow and
// the participant sweeper with their (local) activities.
func registerSettlement(w sdkworker.Worker, d Deps) {
	if d.Settlement != nil {
		w.RegisterWorkflowWithOptions(workflows.CrossRegistrySettlement, workflow.RegisterOptions{Name: workflows.SettlementWorkflowName})
		w.RegisterActivity(d.Settlement)
	}
	if d.PrepareSweep != nil {
		w.RegisterWorkflowWithOptions(workflows.PrepareSweep, workflow.RegisterOptions{Name: workflows.PrepareSweepWorkflowName})
		w.RegisterActivity(d.PrepareSweep)
	}
}

// PrepareSweepScheduleID names the registry's per-minute participant sweep.
func PrepareSweepScheduleID(registry string) string { return "xfer-prepare-sweep-" + registry }

// EnsurePrepareSweepSchedule creates the participant sweeper's schedule if
// it does not exist.
func EnsurePrepareSweepSchedule(ctx context.Context, c client.Client, o Options) error {
	id := PrepareSweepScheduleID(o.Registry)
	_, err := c.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID:            id,
		Spec:          client.ScheduleSpec{CronExpressions: []string{"* * * * *"}, TimeZoneName: "UTC"},
		CatchupWindow: time.Minute,
		Overlap:       enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		Action: &client.ScheduleWorkflowAction{
			ID: id, Workflow: workflows.PrepareSweepWorkflowName, TaskQueue: o.TaskQueue,
			WorkflowExecutionTimeout: 5 * time.Minute,
		},
	})
	if err != nil && !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return fmt.Errorf("create schedule %s: %w", id, err)
	}
	return nil
}

// EnsureSearchAttributes adds the custom search attributes to namespace
// when missing (a Temporal started by an older build lacks the newer
// ones). Attributes that already exist are left alone.
func EnsureSearchAttributes(ctx context.Context, c client.Client, namespace string) error {
	attrs := map[string]enumspb.IndexedValueType{}
	for _, sa := range SearchAttributes {
		attrs[sa] = enumspb.INDEXED_VALUE_TYPE_KEYWORD
	}
	for _, sa := range KeywordListAttributes {
		attrs[sa] = enumspb.INDEXED_VALUE_TYPE_KEYWORD_LIST
	}
	have, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("list search attributes of %s: %w", namespace, err)
	}
	missing := map[string]enumspb.IndexedValueType{}
	for name, typ := range attrs {
		if _, ok := have.GetCustomAttributes()[name]; !ok {
			missing[name] = typ
		}
	}
	if len(missing) == 0 {
		return nil
	}
	_, err = c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{Namespace: namespace, SearchAttributes: missing})
	var already *serviceerror.AlreadyExists
	if err != nil && !errors.As(err, &already) {
		return fmt.Errorf("add search attributes to %s: %w", namespace, err)
	}
	return nil
}
