// Package disputes runs the dispute flow across the ledger and the
// workflow engine: opening a dispute records it on the TEG and starts its
// Dispute workflow (which carries the deadlines and settles the ruling);
// the respondent's answer and the tribunal's ruling are recorded on the
// TEG, then signalled to the workflow. The ledger write commits first and
// is idempotent, so a workflow that cannot be started or signalled is
// answered Unavailable and caught up by the client's retry (and a ruling
// whose signal is lost is still found at the ruling deadline).
//
// The Enforcer is the reactor on DisputeRuled that slashes the stake of a
// respondent the tribunal ruled against, through the enforcement slash,
// with the dispute as the case (one slash per dispute).
//
// The rules (windows, fee, deadline outcomes) are in package dispute.
package disputes

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/dispute"
	"github.com/theprotocol-dev/theprotocol/events"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/worker"
	"github.com/theprotocol-dev/theprotocol/workflows"
)

// Ledger is the TEG as the dispute flow writes it (*ledgerstore.Store).
type Ledger interface {
	OpenDispute(ctx context.Context, req ledgerstore.OpenDisputeRequest) (ledgerstore.Dispute, error)
	RespondDispute(ctx context.Context, id uuid.UUID, respondent, responseRef string) (ledgerstore.Dispute, error)
	RuleDispute(ctx context.Context, req ledgerstore.RulingRequest) (ledgerstore.Dispute, error)
	GetDispute(ctx context.Context, id uuid.UUID) (ledgerstore.Dispute, error)
	Disputes(ctx context.Context, party string, after uuid.UUID, limit int) ([]ledgerstore.Dispute, error)
}

// Service runs the dispute flow; every field is required.
type Service struct {
	Ledger    Ledger
	Temporal  client.Client
	TaskQueue string
	Rules     dispute.Rules
	Metrics   *Metrics // nil: not counted
}

// Open records the dispute (see ledgerstore.Store.OpenDispute for its
// errors) with s.Rules and starts its workflow. If that cannot be
// started the error is Unavailable and the dispute stays recorded: a retry
// with the same idempotency key replays it and starts the workflow.
func (s *Service) Open(ctx context.Context, req ledgerstore.OpenDisputeRequest) (ledgerstore.Dispute, error) {
	req.Rules = s.Rules
	d, err := s.Ledger.OpenDispute(ctx, req)
	if err != nil {
		return d, err
	}
	if s.Metrics != nil && !d.Replayed {
		s.Metrics.Opened.Inc()
	}
	if err := worker.StartOnce(ctx, s.Temporal, s.TaskQueue, workflows.DisputeWorkflowID(d.ID.String()), workflows.DisputeName, input(d)); err != nil {
		return d, apperr.Wrap(err, apperr.Unavailable, "dispute %s is recorded but its deadlines could not be scheduled; retry with the same Idempotency-Key", d.ID)
	}
	return d, nil
}

// Respond records the respondent's answer and tells the workflow.
func (s *Service) Respond(ctx context.Context, id uuid.UUID, respondent, responseRef string) (ledgerstore.Dispute, error) {
	d, err := s.Ledger.RespondDispute(ctx, id, respondent, responseRef)
	if err != nil {
		return d, err
	}
	return d, s.signal(ctx, d, workflows.DisputeRespondedSignal)
}

// Rule records the tribunal's ruling and tells the workflow, which
// settles it.
func (s *Service) Rule(ctx context.Context, req ledgerstore.RulingRequest) (ledgerstore.Dispute, error) {
	d, err := s.Ledger.RuleDispute(ctx, req)
	if err != nil {
		return d, err
	}
	if s.Metrics != nil && !d.Replayed {
		s.Metrics.Ruled.WithLabelValues(string(d.Outcome)).Inc()
	}
	return d, s.signal(ctx, d, workflows.DisputeRuledSignal)
}

// signal signals the dispute's workflow, starting it if it never started
// (its opening's start failed and was not retried). A workflow that has
// finished needs no signal: it ended at a deadline the ledger also
// enforces, or after settling.
func (s *Service) signal(ctx context.Context, d ledgerstore.Dispute, name string) error {
	_, err := s.Temporal.SignalWithStartWorkflow(ctx, workflows.DisputeWorkflowID(d.ID.String()), name, nil, client.StartWorkflowOptions{
		ID: workflows.DisputeWorkflowID(d.ID.String()), TaskQueue: s.TaskQueue,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
	}, workflows.DisputeName, input(d))
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if err == nil || errors.As(err, &started) {
		return nil
	}
	return apperr.Wrap(err, apperr.Unavailable, "dispute %s is recorded but its workflow could not be told; retry", d.ID)
}

func input(d ledgerstore.Dispute) workflows.DisputeInput {
	return workflows.DisputeInput{DisputeID: d.ID.String(), RespondBy: d.RespondBy, RuleBy: d.RuleBy}
}

// Get returns dispute id.
func (s *Service) Get(ctx context.Context, id uuid.UUID) (ledgerstore.Dispute, error) {
	return s.Ledger.GetDispute(ctx, id)
}

// List pages the disputes of party ("" for all).
func (s *Service) List(ctx context.Context, party string, after uuid.UUID, limit int) ([]ledgerstore.Dispute, error) {
	return s.Ledger.Disputes(ctx, party, after, limit)
}

// Slasher is what the Enforcer needs of the TEG (*ledgerstore.Store).
type Slasher interface {
	GetDispute(ctx context.Context, id uuid.UUID) (ledgerstore.Dispute, error)
	SlashStake(ctx context.Context, req ledgerstore.SlashRequest) (ledgerstore.Slash, error)
}

// Enforcer slashes the stake of a respondent who lost a dispute.
type Enforcer struct {
	Ledger Slasher
	// Registry is the TEG whose disputes these are: DisputeRuled events of
	// other registries are not its business.
	Registry string
	Log      *slog.Logger
	Metrics  *Metrics // nil: not counted
}

// CaseID is the enforcement case of dispute id: one slash per dispute.
func CaseID(disputeID uuid.UUID) string { return "dispute-" + disputeID.String() }

// Handle reacts to DisputeRuled. The envelope is only a prompt (reactors
// read the topic unauthenticated): the dispute is read from the ledger,
// and only a dispute recorded here and ruled for its complainant leads to
// a slash of its respondent, case CaseID, which the enforcement slash
// applies at most once. A ruling for the respondent slashes nothing (the
// complainant pays the fee instead). An error is retried by the runner.
func (e *Enforcer) Handle(ctx context.Context, env events.Envelope) error {
	if env.Type != events.TypeDisputeRuled || env.Registry != e.Registry {
		return nil
	}
	var p events.DisputeRuledPayload
	if err := json.Unmarshal(env.Payload, &p); err != nil {
		e.log().Warn("dispute enforcer: undecodable DisputeRuled", "key", env.IdempotencyKey, "err", err)
		return nil
	}
	id, err := uuid.Parse(p.DisputeID)
	if err != nil {
		e.log().Warn("dispute enforcer: DisputeRuled without a dispute id", "key", env.IdempotencyKey)
		return nil
	}
	d, err := e.Ledger.GetDispute(ctx, id)
	if apperr.Is(err, apperr.NotFound) {
		e.log().Warn("dispute enforcer: DisputeRuled names no dispute of this registry", "dispute", id)
		return nil
	}
	if err != nil {
		return err
	}
	if d.Status != dispute.Ruled || d.Outcome != dispute.ForComplainant {
		return nil
	}
	if k, err := ledger.KindOf(d.Respondent); err != nil || k != ledger.KindAgent {
		return nil // only agents stake
	}
	s, err := e.Ledger.SlashStake(ctx, ledgerstore.SlashRequest{
		AgentDID: d.Respondent, CaseID: CaseID(d.ID), Reason: "lost dispute " + d.ID.String(), Actor: "tribunal:" + d.RuledBy,
	})
	if apperr.Is(err, apperr.Invalid) || apperr.Is(err, apperr.NotFound) {
		e.log().Warn("dispute enforcer: slash refused", "dispute", d.ID, "agent", d.Respondent, "err", err)
		return nil
	}
	if err != nil {
		return err
	}
	if !s.Replayed {
		if e.Metrics != nil {
			e.Metrics.Slashed.Inc()
		}
		e.log().Info("dispute enforcer: slashed", "dispute", d.ID, "agent", d.Respondent, "positions", s.Positions, "slashed_units", s.SlashedUnits)
	}
	return nil
}

func (e *Enforcer) log() *slog.Logger {
	if e.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return e.Log
}
