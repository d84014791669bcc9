// Package proposals runs the governance flows that span the ledger and
// the workflow engine: opening a proposal starts its GovernanceTally
// workflow, and the sweep's activity restarts lost ones through the same
// StartTally. The ledger write commits first and is idempotent per
// proposal ID (derived from the proposer and its Idempotency-Key), so a
// workflow that cannot be started is answered Unavailable and started by
// the client's retry, or by the sweep once the window has ended. The
// rules are in package governance; the ledger API calls a Service and the
// node wires it.
package proposals

import (
	"context"
	"errors"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/governance"
	"github.com/theprotocol-dev/theprotocol/workflows"
)

// Ledger is the TEG as the proposal flow writes it. *ledgerstore.Store
// implements it.
type Ledger interface {
	CreateProposal(ctx context.Context, in ledgerstore.ProposalInput) (ledgerstore.Proposal, error)
	GovernanceStakeOwners(ctx context.Context) ([]string, error)
	IsFederationOrigin(ctx context.Context, id string) (bool, error)
}

var _ Ledger = (*ledgerstore.Store)(nil)

// Developers maps agents to the developers that control them (the
// registry store implements it).
type Developers interface {
	AgentDevelopers(ctx context.Context, dids []string) (map[string]string, error)
}

// Service runs the proposal flows; every field is required but Developers.
type Service struct {
	Ledger    Ledger
	Registry  string // the TEG's registry: part of workflow IDs
	Temporal  client.Client
	TaskQueue string
	Limits    governance.Limits
	// Developers, when set, turns on the split-stake defence by developer:
	// the √ is taken over all the stake of one developer's agents and
	// apportioned to them (governance.ByDeveloper). Nil: by agent.
	Developers Developers
}

// idNamespace scopes proposal IDs derived from requests.
var idNamespace = uuid.MustParse("6f1d3c1e-9a52-4b4e-9d7c-1f0e6c2a7b10")

// ProposalID is the ID of the proposal proposer opens with idempotencyKey
// on registry: the same request always names the same proposal.
func ProposalID(registry, proposer, idempotencyKey string) uuid.UUID {
	return uuid.NewSHA1(idNamespace, []byte(registry+"\x00"+proposer+"\x00"+idempotencyKey))
}

// Propose validates d against the limits, opens the proposal (snapshot,
// ProposalCreated) and starts its tally workflow. Errors: Invalid (the
// draft), FailedPrecondition (the proposer's power is below the minimum),
// Unavailable (recorded, but the workflow could not be started: retry with
// the same Idempotency-Key).
func (s *Service) Propose(ctx context.Context, proposer, idempotencyKey string, d governance.Draft) (ledgerstore.Proposal, error) {
	if err := d.Validate(s.Limits); err != nil {
		return ledgerstore.Proposal{}, apperr.New(apperr.Invalid, "%s", err.Error())
	}
	if idempotencyKey == "" {
		return ledgerstore.Proposal{}, apperr.New(apperr.Invalid, "a proposal needs an Idempotency-Key")
	}
	in := ledgerstore.ProposalInput{
		ID: ProposalID(s.Registry, proposer, idempotencyKey), Proposer: proposer, Draft: d,
		MinPower: s.Limits.MinPower, VetoWindow: s.Limits.VetoWindow,
	}
	if s.Developers != nil {
		// Read before the snapshot's transaction (another database): an
		// agent that stakes in between is grouped alone for this proposal.
		owners, err := s.Ledger.GovernanceStakeOwners(ctx)
		if err != nil {
			return ledgerstore.Proposal{}, err
		}
		if in.Developers, err = s.Developers.AgentDevelopers(ctx, owners); err != nil {
			return ledgerstore.Proposal{}, err
		}
	}
	p, err := s.Ledger.CreateProposal(ctx, in)
	if err != nil {
		return p, err
	}
	if err := s.StartTally(ctx, p.ID.String()); err != nil {
		return p, apperr.Wrap(err, apperr.Unavailable, "proposal %s is recorded but its tally could not be scheduled; retry with the same Idempotency-Key", p.ID)
	}
	return p, nil
}

// StartTally starts proposal id's GovernanceTally workflow unless one is
// running, or for a federation proposal this registry originated its
// GovernanceFederationTally (the sweep restarts both kinds). A finished
// one may be started again: its ledger steps happen once per proposal, so
// a rerun only finds them done.
func (s *Service) StartTally(ctx context.Context, id string) error {
	wfID, wf := workflows.GovernanceTallyWorkflowID(s.Registry, id), workflows.GovernanceTallyName
	fed, err := s.Ledger.IsFederationOrigin(ctx, id)
	if err != nil {
		return err
	}
	if fed {
		wfID, wf = workflows.GovernanceFederationTallyWorkflowID(s.Registry, id), workflows.GovernanceFederationTallyName
	}
	_, err = s.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       wfID,
		TaskQueue:                s.TaskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
	}, wf, workflows.GovernanceTallyInput{ProposalID: id})
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return nil
	}
	return err
}

var _ activities.TallyStarter = (*Service)(nil)
