package activities

import (
	"context"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/registry"
)

// ErrTypeBondNotFound marks a bond the ledger does not hold (nothing to
// mature or forfeit): not retryable.
const ErrTypeBondNotFound = "BondNotFound"

// ErrTypeBondNotDeregistered marks a forfeit asked for an agent the
// registry does not show deregistered: refused for good, nothing moves.
const ErrTypeBondNotDeregistered = "BondNotDeregistered"

// BondLedger moves an agent's bond on the TEG. Each method is idempotent on
// the move's key. The amount moved, and for a void the wallet it goes
// back to, are the ledger's record of the bond's lock, never a workflow's
// input: a workflow names the agent, nothing more.
type BondLedger interface {
	// ReleaseBond moves the bond from the agent's locked_bond to its liquid
	// bucket (maturity).
	ReleaseBond(ctx context.Context, agentDID, idempotencyKey string) error
	// ForfeitBond moves the bond from the agent's locked_bond to the
	// registry treasury.
	ForfeitBond(ctx context.Context, agentDID, idempotencyKey string) error
	// VoidBond returns the bond to the developer wallet it came from (the
	// agent was never created: the registry crashed after locking it).
	VoidBond(ctx context.Context, agentDID, idempotencyKey string) error
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
	// LockedAt is when the agent's bond was locked (NotFound: no bond).
	LockedAt(ctx context.Context, agentDID string) (time.Time, error)
}

// BondMaturation are the BondMaturation workflow's activities. (Temporal
// names each activity after its method, not this struct.)
//
// Anyone who may start workflows or send signals in the namespace can
// start a BondMaturation for any DID, with any criteria, and signal it, so
// the activities trust none of it: maturity is decided with the node's
// criteria as floors and the bond's age from the ledger, a forfeit only
// for an agent the registry shows deregistered, and every move takes its
// amount from the ledger's record of the lock.
type BondMaturation struct {
	Ledger   BondLedger
	Criteria BondCriteria
	// Policy are the node's maturity criteria (config.BondSettings): a
	// check never applies weaker ones than these, whatever its input asks
	// (stricter ones stand).
	Policy registry.BondCriteria
	// Now is the clock the bond's age is measured with (default time.Now).
	Now func() time.Time
}

// BondMove names one idempotent bond movement. Only AgentDID and
// IdempotencyKey are used; the amount and the wallet are read from the
// ledger (the fields stay for the histories that carry them).
type BondMove struct {
	AgentDID         string
	DeveloperAccount string // ignored
	AmountUnits      int64  // ignored
	IdempotencyKey   string
}

// BondCheck is one maturity check. MinTransfers and MinTrust may only
// raise the node's floors (BondMaturation.Policy).
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

// CheckBondCriteria reads the agent's state, activity, trust and the
// bond's age and applies registry.DecideBond with the node's criteria as
// floors. The workflow's durable timer waits out the minimum age before
// the first check; the age is checked here again, from the ledger's lock,
// so a workflow started with a shorter wait cannot mature a bond early.
func (b *BondMaturation) CheckBondCriteria(ctx context.Context, in BondCheck) (BondCheckResult, error) {
	c := registry.BondCriteria{
		MinAge:       b.Policy.MinAge,
		MinTransfers: max(in.MinTransfers, b.Policy.MinTransfers),
		MinTrustBps:  max(in.MinTrust, b.Policy.MinTrustBps),
	}
	state, err := b.Criteria.AgentState(ctx, in.AgentDID)
	if err != nil {
		return BondCheckResult{}, err
	}
	if state != AgentActive { // the agent's state decides alone: no need to read its activity
		_, reason := registry.DecideBond(c, registry.BondFacts{Agent: state})
		return BondCheckResult{Agent: state, Reason: reason}, nil
	}
	lockedAt, err := b.Criteria.LockedAt(ctx, in.AgentDID)
	if apperr.Is(err, apperr.NotFound) {
		// No bond to mature: a workflow started for an agent that never
		// locked one.
		return BondCheckResult{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeBondNotFound, err)
	}
	if err != nil {
		return BondCheckResult{}, err
	}
	n, err := b.Criteria.TransferCount(ctx, in.AgentDID)
	if err != nil {
		return BondCheckResult{}, err
	}
	score, err := b.Criteria.TrustScore(ctx, in.AgentDID)
	if err != nil {
		return BondCheckResult{}, err
	}
	now := time.Now
	if b.Now != nil {
		now = b.Now
	}
	verdict, reason := registry.DecideBond(c, registry.BondFacts{Agent: state, Age: now().Sub(lockedAt), Transfers: n, TrustBps: score})
	return BondCheckResult{Agent: state, Transfers: n, Trust: score, Eligible: verdict == registry.BondMature, Reason: reason}, nil
}

// ConfirmDeregistered reports whether the registry shows agentDID
// deregistered: a deregistration signal is only a hint to look.
func (b *BondMaturation) ConfirmDeregistered(ctx context.Context, agentDID string) (bool, error) {
	state, err := b.Criteria.AgentState(ctx, agentDID)
	return state == AgentDeregistered, err
}

// MatureBond releases the bond to the agent's liquid balance.
func (b *BondMaturation) MatureBond(ctx context.Context, in BondMove) error {
	return bondErr(b.Ledger.ReleaseBond(ctx, in.AgentDID, in.IdempotencyKey))
}

// VoidBond returns the bond to the developer wallet it came from.
func (b *BondMaturation) VoidBond(ctx context.Context, in BondMove) error {
	return bondErr(b.Ledger.VoidBond(ctx, in.AgentDID, in.IdempotencyKey))
}

// ForfeitBond moves the bond to the treasury, only if the registry shows
// the agent deregistered (ErrTypeBondNotDeregistered otherwise).
func (b *BondMaturation) ForfeitBond(ctx context.Context, in BondMove) error {
	ok, err := b.ConfirmDeregistered(ctx, in.AgentDID)
	if err != nil {
		return err
	}
	if !ok {
		return temporal.NewNonRetryableApplicationError("agent "+in.AgentDID+" is not deregistered: its bond is not forfeited", ErrTypeBondNotDeregistered, nil)
	}
	return bondErr(b.Ledger.ForfeitBond(ctx, in.AgentDID, in.IdempotencyKey))
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
