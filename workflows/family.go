package workflows

import (
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// Families is every workflow family a worker can run, in registration
// order. The worker (worker.Start), the namespace set-up and the replay
// test all iterate this list, so a family added here is registered,
// scheduled, given its search attributes and held to committed histories
// with no further edit; a family missing here runs nowhere.
var Families = []Family{
	IdempotencySweepFamily,
	HoldExpiryFamily,
	BondFamily,
	StakingFamily,
	SettlementFamily,
	CheckpointFamily,
	DisputeFamily,
	ReputationFamily,
	GovernanceFamily,
	GovernanceFederationFamily,
	BridgeFamily,
	FederationSyncFamily,
}

// Family is one business flow's workflows, declared once: what the worker
// registers, which activity structs those workflows call (the node
// supplies the values), the schedules it keeps, the search attributes its
// workflows set and where its committed replay histories are.
type Family struct {
	// Name identifies the family in logs and test failures.
	Name string
	// Workflows are registered under their names; a name is part of every
	// running workflow's identity and never changes.
	Workflows []Workflow
	// Activities are nil pointers of the activity structs the workflows
	// call, e.g. (*activities.HoldSweeper)(nil). The worker runs the family
	// only when the node supplies a value of every one of these types
	// (a node without a TEG supplies no ledger activities, so the ledger's
	// families are skipped there).
	Activities []any
	// Schedules are created at worker start when absent; an existing one
	// is left alone, as an operator may have paused or edited it.
	Schedules []Schedule
	// SearchAttributes are the custom attributes the workflows set; they
	// are registered on the namespace whether or not this node runs the
	// family (another node's workflows or a client may set them).
	SearchAttributes []temporal.SearchAttributeKey
	// Histories is the glob, relative to worker/testdata/histories, of the
	// family's committed histories; every workflow of the family has at
	// least one, and every file matches exactly one family.
	Histories string
}

// Workflow is one registered workflow function and its name.
type Workflow struct {
	Name string
	Func any
}

// Schedule is a Temporal Schedule a family keeps per registry. Its ID is
// IDPrefix + registry; running deployments know it by that ID, so the
// prefix never changes (nor does an existing schedule pick up an edited
// declaration: it is created once, then left to operators).
type Schedule struct {
	IDPrefix      string
	Cron          string // evaluated in UTC
	CatchupWindow time.Duration
	Overlap       enumspb.ScheduleOverlapPolicy
	Workflow      string // the name of one of the family's Workflows
	// Args builds the started workflow's arguments; nil starts it without
	// any.
	Args    func(ScheduleParams) []any
	Timeout time.Duration // the started workflow's execution timeout
}

// ScheduleParams are the worker settings a schedule's arguments may
// depend on.
type ScheduleParams struct {
	Registry string
	// IdempotencyRetention is how long Idempotency-Key records are kept
	// (raised to MinIdempotencyRetention).
	IdempotencyRetention time.Duration
}

// ID is the schedule's ID for registry, also the workflow ID its actions
// start from (Temporal appends the nominal time).
func (s Schedule) ID(registry string) string { return s.IDPrefix + registry }

// RegisterWorkflows registers the family's workflows under their names on
// r (a worker, a replayer or a test environment).
func (f Family) RegisterWorkflows(r interface {
	RegisterWorkflowWithOptions(w any, options workflow.RegisterOptions)
}) {
	for _, w := range f.Workflows {
		r.RegisterWorkflowWithOptions(w.Func, workflow.RegisterOptions{Name: w.Name})
	}
}

// SearchAttributeKeys are the custom search attributes of every family,
// each once, in declaration order.
func SearchAttributeKeys() []temporal.SearchAttributeKey {
	var keys []temporal.SearchAttributeKey
	seen := map[string]bool{}
	for _, f := range Families {
		for _, k := range f.SearchAttributes {
			if !seen[k.GetName()] {
				seen[k.GetName()] = true
				keys = append(keys, k)
			}
		}
	}
	return keys
}
