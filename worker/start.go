package worker

import (
	"context"
	"errors"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
)

// StartOnce starts workflow name as id on taskQueue unless a run with that
// ID is running or has ever run: both count as started. Flows whose
// workflow exists once per business object (a bond per agent, a lock
// expiry per position) call it on every retry of the request that needs
// the workflow, so a retried request neither fails nor starts a second
// run, and a finished run is never started again.
func StartOnce(ctx context.Context, c client.Client, taskQueue, id, name string, arg any) error {
	_, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       id,
		TaskQueue:                taskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
	}, name, arg)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return nil
	}
	return err
}
