package activities

import (
	"context"

	"go.temporal.io/sdk/temporal"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/registry"
)

// ErrTypeBondNotFound marks a bond the ledger does not hold (nothing to
// mature or forfeit): not retryable.
const ErrTypeBondNotFound = "BondNotFound"

// BondLedger moves an agent's bond on the TEG. Each method is idempotent on
// the move's IdempotencyKey.
type BondLedger interface {
	// ReleaseBond moves the bond from the agent's locked_bond to its liquid
	// bucket (maturity).
	ReleaseBond(ctx context.Context, agentDID string, amountUnits int64, idempotencyKey string) error
	// ForfeitBond moves the bond from the agent's locked_bond to the
	// registry treasury.
	ForfeitBond(ctx context.Context, agentDID string, amountUnits int64, idempotencyKey string) error
	// VoidBond returns the bond to the developer wallet it came from (the
	// agent was never created: the registry crashed after locking it).
	VoidBond(ctx context.Context, agentDID, developerAccount string, amountUnits int64, idempotencyKey string) error
}

// Agent states the bond check distinguishes (the registry's names).
const (
	AgentActive       = registry.AgentActive
	AgentDeregistered = registry.AgentDeregistered
	AgentMissing      = registry.AgentMissing
)

// BondCriteria reports what maturity depends on.
type BondCriteria interface {
	// AgentState is AgentActive, AgentDeregistered or AgentMissing.
	AgentState(ctx context.Context, agentDID string) (string, error)
	// TransferCount is the number of transfers the agent sent.
	TransferCount(ctx context.Context, agentDID string) (int64, error)
	// TrustScore is the agent's trust score in basis points (0..10000).
	TrustScore(ctx context.Context, agentDID string) (int64, error)
}

// BondMaturation are the BondMaturation workflow's activities. (Temporal
// names each activity after its method, not this struct.)
type BondMaturation struct {
	Ledger   BondLedger
	Criteria BondCriteria
}

// BondMove names one idempotent bond movement.
type BondMove struct {
	AgentDID         string
	DeveloperAccount string // VoidBond only
	AmountUnits      int64
	IdempotencyKey   string
}

// BondCheck is one maturity check.
type BondCheck struct {
	AgentDID     string
	MinTransfers int64
	MinTrust     int64
}

// BondCheckResult says whether the bond may mature, and why not.
type BondCheckResult struct {
	Agent     string // AgentActive, AgentDeregistered, AgentMissing
	Eligible  bool
	Transfers int64
	Trust     int64
	Reason    string
}

// CheckBondCriteria reads the agent's state, activity and trust and
// applies registry.DecideBond. The minimum age is not checked here: the
// workflow's durable timer waited it out before the first check.
func (b *BondMaturation) CheckBondCriteria(ctx context.Context, in BondCheck) (BondCheckResult, error) {
	c := registry.BondCriteria{MinTransfers: in.MinTransfers, MinTrustBps: in.MinTrust}
	state, err := b.Criteria.AgentState(ctx, in.AgentDID)
	if err != nil {
		return BondCheckResult{}, err
	}
	if state != AgentActive { // the agent's state decides alone: no need to read its activity
		_, reason := registry.DecideBond(c, registry.BondFacts{Agent: state})
		return BondCheckResult{Agent: state, Reason: reason}, nil
	}
	n, err := b.Criteria.TransferCount(ctx, in.AgentDID)
	if err != nil {
		return BondCheckResult{}, err
	}
	score, err := b.Criteria.TrustScore(ctx, in.AgentDID)
	if err != nil {
		return BondCheckResult{}, err
	}
	verdict, reason := registry.DecideBond(c, registry.BondFacts{Agent: state, Transfers: n, TrustBps: score})
	return BondCheckResult{Agent: state, Transfers: n, Trust: score, Eligible: verdict == registry.BondMature, Reason: reason}, nil
}

// MatureBond releases the bond to the agent's liquid balance.
func (b *BondMaturation) MatureBond(ctx context.Context, in BondMove) error {
	return bondErr(b.Ledger.ReleaseBond(ctx, in.AgentDID, in.AmountUnits, in.IdempotencyKey))
}

// VoidBond returns the bond to the developer wallet.
func (b *BondMaturation) VoidBond(ctx context.Context, in BondMove) error {
	return bondErr(b.Ledger.VoidBond(ctx, in.AgentDID, in.DeveloperAccount, in.AmountUnits, in.IdempotencyKey))
}

// ForfeitBond moves the bond to the treasury.
func (b *BondMaturation) ForfeitBond(ctx context.Context, in BondMove) error {
	return bondErr(b.Ledger.ForfeitBond(ctx, in.AgentDID, in.AmountUnits, in.IdempotencyKey))
}

func bondErr(err error) error {
	if err == nil {
		return nil
	}
	if apperr.Is(err, apperr.NotFound) || apperr.Is(err, apperr.InsufficientFunds) {
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeBondNotFound, err)
	}
	return err
}
