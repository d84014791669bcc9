package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/config"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/db/registrystore"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/registry"
	"github.com/theprotocol-dev/theprotocol/workflows"
)

// BondSettings are the reputation bond's maturity criteria (whitepaper
// §5.5), read and validated by config and handed in through Options.
type BondSettings = config.BondSettings

// TrustScorer gives an agent's trust score in basis points (0..10000).
type TrustScorer interface {
	TrustScore(ctx context.Context, agentDID string) (int64, error)
}

// FixedTrust scores every agent the same. There is no reputation system
// yet, so the default scorer is FixedTrust(10000): the trust criterion
// always passes and maturity depends on age and activity only. Plug the
// reputation service in here when it exists.
type FixedTrust int64

// TrustScore implements TrustScorer.
func (f FixedTrust) TrustScore(context.Context, string) (int64, error) { return int64(f), nil }

// Bonds wires the reputation bond: it implements registry.BondLocker and
// registry.BondDeregistrationNotifier (agent creation and deregistration)
// and activities.BondCriteria (the maturity check); Ledger() is the
// workflow's activities.BondLedger. (One type cannot implement both
// registry.BondLocker and activities.BondLedger: both have a VoidBond with
// different signatures.)
type Bonds struct {
	Store     *ledgerstore.Store
	Agents    *registrystore.Store
	Temporal  client.Client
	TaskQueue string
	Settings  BondSettings
	Trust     TrustScorer // default FixedTrust(10000)
	Log       *slog.Logger
}

var (
	_ registry.BondLocker                 = (*Bonds)(nil)
	_ registry.BondDeregistrationNotifier = (*Bonds)(nil)
	_ activities.BondCriteria             = (*Bonds)(nil)
	_ activities.BondLedger               = ledgerstore.BondLedger{}
)

// Ledger returns the bond workflow's ledger port.
func (b *Bonds) Ledger() activities.BondLedger { return ledgerstore.BondLedger{Store: b.Store} }

func (b *Bonds) log() *slog.Logger {
	if b.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return b.Log
}

func bondVoidKey(did string) string { return "bond-void-" + did }

// LockBond moves the bond from the developer wallet to the agent's
// locked_bond bucket (InsufficientFunds when the wallet is short: nothing
// moved), then starts the agent's BondMaturation workflow. Both steps are
// idempotent: the ledger on the request's key, Temporal on the workflow ID
// (a running or finished workflow for the DID counts as started). If the
// workflow cannot be started the bond is voided again and the creation
// fails as Unavailable (the client retries with a new agent).
func (b *Bonds) LockBond(ctx context.Context, req registry.BondRequest) error {
	if _, err := b.Store.LockBond(ctx, req.AgentDID, req.DeveloperAccountID, req.AmountUnits, req.IdempotencyKey); err != nil {
		return err
	}
	if err := b.startWorkflow(ctx, req); err != nil {
		vctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, verr := b.Store.VoidBond(vctx, req.AgentDID, req.DeveloperAccountID, req.AmountUnits, bondVoidKey(req.AgentDID)); verr != nil {
			// The bond stays locked for an agent that is never created;
			// an operator must void it (bond-void-<did>).
			b.log().Error("reputation bond locked but neither the workflow started nor the bond voided",
				"did", req.AgentDID, "start_error", err, "void_error", verr)
		}
		return apperr.Wrap(err, apperr.Unavailable, "the bond workflow could not be started; retry later")
	}
	return nil
}

func (b *Bonds) startWorkflow(ctx context.Context, req registry.BondRequest) error {
	_, err := b.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:        workflows.BondWorkflowID(req.AgentDID),
		TaskQueue: b.TaskQueue,
		// One bond per agent, ever: a finished bond is never restarted, and
		// a retried start of a running one returns it.
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowExecutionErrorWhenAlreadyStarted: false,
	}, workflows.BondWorkflowName, workflows.BondInput{
		AgentDID: req.AgentDID, DeveloperAccount: req.DeveloperAccountID, AmountUnits: req.AmountUnits,
		MinAge: b.Settings.MinAge, MinTransfers: b.Settings.MinTransfers, MinTrust: b.Settings.MinTrust,
		RecheckEvery: b.Settings.RecheckEvery,
	})
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return nil
	}
	return err
}

// VoidBond returns the bond to the developer wallet (the registry did not
// commit the agent), then terminates the workflow, which has nothing left
// to do. If the ledger move fails the workflow is left running: its first
// check finds the agent missing and voids the bond with the same key.
func (b *Bonds) VoidBond(ctx context.Context, req registry.BondRequest) error {
	if _, err := b.Store.VoidBond(ctx, req.AgentDID, req.DeveloperAccountID, req.AmountUnits, bondVoidKey(req.AgentDID)); err != nil {
		return err
	}
	err := b.Temporal.TerminateWorkflow(ctx, workflows.BondWorkflowID(req.AgentDID), "", "agent creation failed; bond voided")
	var nf *serviceerror.NotFound
	if err != nil && !errors.As(err, &nf) {
		b.log().Warn("terminate bond workflow after void", "did", req.AgentDID, "error", err)
	}
	return nil
}

// AgentDeregistered signals the agent's bond workflow to forfeit the bond.
// An agent without a bond workflow (created before bonds existed, or
// already matured) is not an error.
func (b *Bonds) AgentDeregistered(ctx context.Context, agentDID string) error {
	err := b.Temporal.SignalWorkflow(ctx, workflows.BondWorkflowID(agentDID), "", workflows.SignalBondDeregistered, nil)
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return nil
	}
	return err
}

// AgentState implements activities.BondCriteria from the registry.
func (b *Bonds) AgentState(ctx context.Context, agentDID string) (string, error) {
	a, err := b.Agents.Agent(ctx, agentDID)
	if apperr.Is(err, apperr.NotFound) {
		return activities.AgentMissing, nil
	}
	if err != nil {
		return "", err
	}
	if a.Status == registry.AgentDeregistered {
		return activities.AgentDeregistered, nil
	}
	return activities.AgentActive, nil
}

// TransferCount implements activities.BondCriteria from the ledger.
func (b *Bonds) TransferCount(ctx context.Context, agentDID string) (int64, error) {
	return b.Store.TransferCount(ctx, agentDID)
}

// TrustScore implements activities.BondCriteria with the pluggable scorer.
func (b *Bonds) TrustScore(ctx context.Context, agentDID string) (int64, error) {
	if b.Trust == nil {
		return FixedTrust(10000).TrustScore(ctx, agentDID)
	}
	return b.Trust.TrustScore(ctx, agentDID)
}

// BondStatus reports the agent's bond: the state from the ledger's bond
// moves (authoritative for money) and, while the workflow runs, its checks
// and earliest maturity from the workflow query.
func (b *Bonds) BondStatus(ctx context.Context, agentDID string) (registry.BondStatus, error) {
	moves, err := b.Store.BondMoves(ctx, agentDID)
	if err != nil {
		return registry.BondStatus{}, err
	}
	if len(moves) == 0 {
		return registry.BondStatus{}, apperr.New(apperr.NotFound, "agent %s has no reputation bond", agentDID)
	}
	bal, err := b.Store.Balances(ctx, agentDID)
	if err != nil {
		return registry.BondStatus{}, err
	}
	st := registry.BondStatus{AgentDID: agentDID, AmountUnits: moves[0].AmountUnits, LockedAt: moves[0].CreatedAt}
	for _, bb := range bal.Buckets {
		if bb.Bucket == ledger.BucketLockedBond {
			st.LockedUnits = bb.Units
		}
	}
	last := moves[len(moves)-1]
	st.State = map[string]string{
		ledgerstore.BondLock: workflows.BondLocked, ledgerstore.BondRelease: workflows.BondMatured,
		ledgerstore.BondForfeit: workflows.BondForfeited, ledgerstore.BondVoid: workflows.BondVoided,
	}[last.Kind]
	if last.Kind != ledgerstore.BondLock {
		t := last.CreatedAt
		st.SettledAt = &t
		return st, nil
	}
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, err := b.Temporal.QueryWorkflow(qctx, workflows.BondWorkflowID(agentDID), "", workflows.QueryBondStatus)
	if err != nil {
		// The ledger state is still right; the schedule is unknown.
		b.log().Warn("query bond workflow", "did", agentDID, "error", err)
		return st, nil
	}
	var ws workflows.BondStatus
	if err := v.Get(&ws); err != nil {
		return st, fmt.Errorf("decode bond status: %w", err)
	}
	st.Checks, st.LastReason = ws.Checks, ws.LastReason
	if !ws.MaturesNoEarlierThan.IsZero() {
		t := ws.MaturesNoEarlierThan.UTC()
		st.MaturesNoEarlierThan = &t
	}
	return st, nil
}
