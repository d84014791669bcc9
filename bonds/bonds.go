// Package bonds is the reputation bond once it is locked: what the
// BondMaturation workflow's activities need (the maturity criteria and the
// ledger moves that settle the bond) and the bond's status as the registry
// shows it. Locking the bond is part of agent creation (package
// onboarding); maturing, forfeiting and voiding it are the workflow's
// decisions (package workflows), carried out through a Service.
package bonds

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/db/registrystore"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/registry"
	"github.com/theprotocol-dev/theprotocol/workflows"
)

// TrustScorer gives an agent's trust score in basis points (0..10000).
type TrustScorer interface {
	TrustScore(ctx context.Context, agentDID string) (int64, error)
}

// FixedTrust scores every agent the same: a stand-in for tests and for a
// node with no source of trust scores (the node wires the reputation
// service, or its API on the EventStore's node, as Service.Trust).
type FixedTrust int64

// TrustScore implements TrustScorer.
func (f FixedTrust) TrustScore(context.Context, string) (int64, error) { return int64(f), nil }

// AgentLookup reads an agent from the registry: *registrystore.Store, or
// the registry's process over mTLS when the roles run apart (package
// split). NotFound must mean the agent does not exist, never that the
// registry could not be asked.
type AgentLookup interface {
	Agent(ctx context.Context, did string) (registry.Agent, error)
}

var _ AgentLookup = (*registrystore.Store)(nil)

// Service serves the bond workflow's activities and the bond status. It
// needs the registry (is the agent still there?) and the TEG (transfers,
// bond moves): bonds run on the TEG's node, with the registry in the same
// process or reached through Agents.
type Service struct {
	Ledger   *ledgerstore.Store
	Agents   AgentLookup
	Temporal client.Client // queried for a running bond's schedule
	Trust    TrustScorer   // the reputation scores; default FixedTrust(10000)
	Log      *slog.Logger  // default: discard
}

// The workflow's activities reach the bond through these ports.
var (
	_ activities.BondCriteria = (*Service)(nil)
	_ activities.BondLedger   = (*Service)(nil)
)

func (s *Service) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

// AgentState implements activities.BondCriteria from the registry.
func (s *Service) AgentState(ctx context.Context, agentDID string) (string, error) {
	a, err := s.Agents.Agent(ctx, agentDID)
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
func (s *Service) TransferCount(ctx context.Context, agentDID string) (int64, error) {
	return s.Ledger.TransferCount(ctx, agentDID)
}

// TrustScore implements activities.BondCriteria with the pluggable scorer.
func (s *Service) TrustScore(ctx context.Context, agentDID string) (int64, error) {
	if s.Trust == nil {
		return FixedTrust(10000).TrustScore(ctx, agentDID)
	}
	return s.Trust.TrustScore(ctx, agentDID)
}

// LockedAt implements activities.BondCriteria: when the bond was locked,
// from the ledger.
func (s *Service) LockedAt(ctx context.Context, agentDID string) (time.Time, error) {
	lock, err := s.lock(ctx, agentDID)
	return lock.CreatedAt, err
}

// lock is the ledger's record of the agent's bond lock: the amount every
// later move of the bond moves, and the wallet it came from. NotFound when
// the agent never locked one.
func (s *Service) lock(ctx context.Context, agentDID string) (ledgerstore.BondMove, error) {
	moves, err := s.Ledger.BondMoves(ctx, agentDID)
	if err != nil {
		return ledgerstore.BondMove{}, err
	}
	for _, m := range moves {
		if m.Kind == ledgerstore.BondLock {
			return m, nil
		}
	}
	return ledgerstore.BondMove{}, apperr.New(apperr.NotFound, "agent %s holds no reputation bond", agentDID)
}

// The three moves below implement activities.BondLedger: each reads the
// bond's lock and moves what it locked, whatever a workflow asked for.

// ReleaseBond matures the bond: locked_bond → the agent's liquid bucket.
func (s *Service) ReleaseBond(ctx context.Context, agentDID, key string) error {
	lock, err := s.lock(ctx, agentDID)
	if err != nil {
		return err
	}
	_, err = s.Ledger.ReleaseBond(ctx, agentDID, lock.AmountUnits, key)
	return err
}

// ForfeitBond forfeits the bond: locked_bond → the registry treasury.
// Whether the agent really left is the activity's check (it asks the
// registry through AgentState first).
func (s *Service) ForfeitBond(ctx context.Context, agentDID, key string) error {
	lock, err := s.lock(ctx, agentDID)
	if err != nil {
		return err
	}
	_, err = s.Ledger.ForfeitBond(ctx, agentDID, lock.AmountUnits, key)
	return err
}

// VoidBond returns the bond to the developer wallet it came from.
func (s *Service) VoidBond(ctx context.Context, agentDID, key string) error {
	lock, err := s.lock(ctx, agentDID)
	if err != nil {
		return err
	}
	_, err = s.Ledger.VoidBond(ctx, agentDID, lock.CounterAccount, lock.AmountUnits, key)
	return err
}

// Status is an agent's reputation bond as GET
// /api/v1/agents/{did}/reputation-bond shows it.
type Status struct {
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

// Status reports the agent's bond: the state from the ledger's bond moves
// (authoritative for money) and, while the workflow runs, its checks and
// earliest maturity from the workflow query. NotFound when the agent has
// no bond; ledger errors without a code are Unavailable.
func (s *Service) Status(ctx context.Context, agentDID string) (Status, error) {
	st, err := s.status(ctx, agentDID)
	return st, apperr.WrapUncoded(err, apperr.Unavailable, "the ledger is unavailable; retry later")
}

func (s *Service) status(ctx context.Context, agentDID string) (Status, error) {
	moves, err := s.Ledger.BondMoves(ctx, agentDID)
	if err != nil {
		return Status{}, err
	}
	if len(moves) == 0 {
		return Status{}, apperr.New(apperr.NotFound, "agent %s has no reputation bond", agentDID)
	}
	bal, err := s.Ledger.Balances(ctx, agentDID)
	if err != nil {
		return Status{}, err
	}
	st := Status{AgentDID: agentDID, AmountUnits: moves[0].AmountUnits, LockedAt: moves[0].CreatedAt}
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
	v, err := s.Temporal.QueryWorkflow(qctx, workflows.BondWorkflowID(agentDID), "", workflows.QueryBondStatus)
	if err != nil {
		// The ledger state is still right; the schedule is unknown.
		s.log().Warn("query bond workflow", "did", agentDID, "error", err)
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
