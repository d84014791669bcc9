package registry

import (
	"context"
	"time"
)

// Ledger account kinds passed to Ledger.OpenAccount.
const (
	AccountKindAgent     = KindAgent
	AccountKindDeveloper = KindDeveloper
)

// Ledger is what the registry needs from the TEG when identities are made:
// every agent (account ID = its DID) and every developer wallet (account ID
// = "dev:<uuid>") gets an account.
//
// The registry calls OpenAccount BEFORE committing the identity, outside its
// own transaction, so a crash leaves at most an empty account and never an
// identity without one. OpenAccount must therefore be idempotent: opening an
// existing account of the same kind succeeds. Errors abort the creation;
// return an *apperr.Error (Unavailable for a ledger that is down) to choose
// the caller's status. A nil Ledger skips the call (tests, registry-only
// nodes).
type Ledger interface {
	OpenAccount(ctx context.Context, accountID string, kind string) error
}

// BondRequest names one reputation bond (whitepaper §5.5).
type BondRequest struct {
	AgentDID           string
	DeveloperAccountID string // the wallet the bond is taken from: "dev:<uuid>"
	AmountUnits        int64  // base units (1 AVT = 10^8)
	IdempotencyKey     string // "bond-lock-<did>"; derive follow-ups from the DID too
}

// DefaultBondUnits is the reputation bond per agent: 50 AVT.
const DefaultBondUnits int64 = 50 * 100_000_000

// BondLocker is the extension point for the reputation bond (node.Bonds
// implements it on the TEG ledger and the BondMaturation workflow).
//
// Agent creation calls LockBond after Ledger.OpenAccount and before its own
// transaction commits. If the wallet is short, LockBond returns an
// apperr.InsufficientFunds error and no agent is created. If the registry
// transaction then fails, the registry calls VoidBond with the same request
// (best effort; a crash can skip it, so the bond workflow voids the bond
// itself when its check finds no agent). Both must be idempotent on
// IdempotencyKey. A nil BondLocker skips the bond.
type BondLocker interface {
	LockBond(ctx context.Context, req BondRequest) error
	VoidBond(ctx context.Context, req BondRequest) error
}

// BondDeregistrationNotifier is optionally implemented by a BondLocker: the
// registry calls AgentDeregistered after a deregistration commits so the
// bond workflow can forfeit at once. Best effort: the bond workflow also
// sees the deregistration on its next check.
type BondDeregistrationNotifier interface {
	AgentDeregistered(ctx context.Context, agentDID string) error
}

// BondStatus is an agent's reputation bond as GET
// /api/v1/agents/{did}/reputation-bond shows it.
type BondStatus struct {
	AgentDID    string
	State       string // locked, matured, forfeited, voided
	AmountUnits int64  // the bond
	LockedUnits int64  // what the agent's locked_bond bucket holds now
	LockedAt    time.Time
	SettledAt   *time.Time // when it matured, was forfeited or voided
	// From the BondMaturation workflow while it runs (nil/zero otherwise).
	MaturesNoEarlierThan *time.Time
	Checks               int
	LastReason           string
}

// BondStatusReader is optionally implemented by a BondLocker: it serves
// GET /api/v1/agents/{did}/reputation-bond (NotFound when the agent has no
// bond).
type BondStatusReader interface {
	BondStatus(ctx context.Context, agentDID string) (BondStatus, error)
}
