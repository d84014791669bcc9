package activities_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/registry"
)

// bondLedger records which move it was asked for and answers err.
type bondLedger struct {
	err   error
	moves []string
}

func (l *bondLedger) ReleaseBond(_ context.Context, did, key string) error {
	l.moves = append(l.moves, "release "+did+" "+key)
	return l.err
}

func (l *bondLedger) ForfeitBond(_ context.Context, did, key string) error {
	l.moves = append(l.moves, "forfeit "+did+" "+key)
	return l.err
}

func (l *bondLedger) VoidBond(_ context.Context, did, key string) error {
	l.moves = append(l.moves, "void "+did+" "+key)
	return l.err
}

// bondCriteria answers the maturity inputs, or err from the step named by
// failAt.
type bondCriteria struct {
	state            string
	transfers, trust int64
	lockedAt         time.Time
	failAt           string
	err              error
}

func (c bondCriteria) fail(step string) error {
	if c.failAt == step {
		return c.err
	}
	return nil
}

func (c bondCriteria) AgentState(context.Context, string) (string, error) {
	return c.state, c.fail("state")
}

func (c bondCriteria) TransferCount(context.Context, string) (int64, error) {
	return c.transfers, c.fail("transfers")
}

func (c bondCriteria) TrustScore(context.Context, string) (int64, error) {
	return c.trust, c.fail("trust")
}

func (c bondCriteria) LockedAt(context.Context, string) (time.Time, error) {
	return c.lockedAt, c.fail("locked")
}

// A bond the ledger does not hold, or cannot move for lack of funds, is
// final; every other ledger failure is retried (money, once decided, must
// move). The moves name the agent and the key only: the amount and the
// wallet of the input are not passed on.
func TestBondMovesClassifyLedgerErrors(t *testing.T) {
	cases := append([]errorCase{{name: "ok"}, {name: "network", portErr: errNetwork, nonRetryable: retryable}},
		codes(activities.ErrTypeBondNotFound, apperr.NotFound, apperr.InsufficientFunds)...)
	cases = append(cases, codes(retryable, apperr.Unavailable, apperr.Internal, apperr.Conflict, apperr.Invalid, apperr.FailedPrecondition)...)
	move := activities.BondMove{AgentDID: "did:a", DeveloperAccount: "dev:1", AmountUnits: 5, IdempotencyKey: "k"}
	for _, step := range []struct {
		name string
		fn   func(*activities.BondMaturation) any
		want string
	}{
		{"MatureBond", func(b *activities.BondMaturation) any { return b.MatureBond }, "release did:a k"},
		{"VoidBond", func(b *activities.BondMaturation) any { return b.VoidBond }, "void did:a k"},
		{"ForfeitBond", func(b *activities.BondMaturation) any { return b.ForfeitBond }, "forfeit did:a k"},
	} {
		for _, c := range cases {
			t.Run(step.name+"/"+c.name, func(t *testing.T) {
				ledger := &bondLedger{err: c.portErr}
				b := &activities.BondMaturation{Ledger: ledger, Criteria: bondCriteria{state: activities.AgentDeregistered}}
				requireClass(t, c, execute(t, b, step.fn(b), move))
				require.Equal(t, []string{step.want}, ledger.moves)
			})
		}
	}
}

// A forfeit is refused for good, and nothing moves, unless the registry
// shows the agent deregistered; a registry that cannot be read is asked
// again.
func TestForfeitBondNeedsTheRegistrysDeregistration(t *testing.T) {
	move := activities.BondMove{AgentDID: "did:a", AmountUnits: 5, IdempotencyKey: "bond-forfeit-did:a"}
	for _, tc := range []struct {
		name     string
		criteria bondCriteria
		want     errorCase
	}{
		{"active", bondCriteria{state: activities.AgentActive},
			errorCase{name: "active", portErr: errors.New("not deregistered"), nonRetryable: activities.ErrTypeBondNotDeregistered}},
		{"missing", bondCriteria{state: activities.AgentMissing},
			errorCase{name: "missing", portErr: errors.New("not deregistered"), nonRetryable: activities.ErrTypeBondNotDeregistered}},
		{"registry down", bondCriteria{failAt: "state", err: errNetwork}, errorCase{name: "down", portErr: errNetwork, nonRetryable: retryable}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ledger := &bondLedger{}
			b := &activities.BondMaturation{Ledger: ledger, Criteria: tc.criteria}
			requireClass(t, tc.want, execute(t, b, b.ForfeitBond, move))
			require.Empty(t, ledger.moves)
		})
	}
	for state, want := range map[string]bool{activities.AgentDeregistered: true, activities.AgentActive: false, activities.AgentMissing: false} {
		b := &activities.BondMaturation{Criteria: bondCriteria{state: state}}
		got, err := runResult[bool](t, b, b.ConfirmDeregistered, "did:a")
		require.NoError(t, err)
		require.Equal(t, want, got, state)
	}
}

// Reading the maturity criteria never fails for good: whatever the
// registry or the ledger answers, the check is retried (but for a bond
// that was never locked).
func TestCheckBondCriteriaRetriesEveryReadError(t *testing.T) {
	cases := append([]errorCase{{name: "network", portErr: errNetwork}},
		codes(retryable, apperr.Invalid, apperr.Unavailable, apperr.Internal)...)
	for _, step := range []string{"state", "locked", "transfers", "trust"} {
		cases := cases
		if step != "locked" { // no lock is final (TestCheckBondCriteriaWithoutALockIsFinal)
			cases = append(cases, codes(retryable, apperr.NotFound)...)
		}
		for _, c := range cases {
			t.Run(step+"/"+c.name, func(t *testing.T) {
				b := &activities.BondMaturation{Criteria: bondCriteria{state: activities.AgentActive, failAt: step, err: c.portErr}}
				requireClass(t, c, execute(t, b, b.CheckBondCriteria, activities.BondCheck{AgentDID: "did:a"}))
			})
		}
	}
}

func TestCheckBondCriteriaDecides(t *testing.T) {
	for _, c := range []struct {
		name     string
		criteria bondCriteria
		want     activities.BondCheckResult
	}{
		{"eligible", bondCriteria{state: activities.AgentActive, transfers: 10, trust: 5000},
			activities.BondCheckResult{Agent: activities.AgentActive, Eligible: true, Transfers: 10, Trust: 5000}},
		{"too few transfers", bondCriteria{state: activities.AgentActive, transfers: 9, trust: 9000},
			activities.BondCheckResult{Agent: activities.AgentActive, Transfers: 9, Trust: 9000, Reason: "not enough transfers"}},
		{"trust below the floor", bondCriteria{state: activities.AgentActive, transfers: 10, trust: 4999},
			activities.BondCheckResult{Agent: activities.AgentActive, Transfers: 10, Trust: 4999, Reason: "trust score below the floor"}},
		{"deregistered", bondCriteria{state: activities.AgentDeregistered},
			activities.BondCheckResult{Agent: activities.AgentDeregistered, Reason: "agent deregistered"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := &activities.BondMaturation{Criteria: c.criteria}
			got, err := runResult[activities.BondCheckResult](t, b, b.CheckBondCriteria, activities.BondCheck{AgentDID: "did:a", MinTransfers: 10, MinTrust: 5000})
			require.NoError(t, err)
			require.Equal(t, c.want, got)
		})
	}
}

// An agent without a bond lock has nothing to mature: final.
func TestCheckBondCriteriaWithoutALockIsFinal(t *testing.T) {
	b := &activities.BondMaturation{Criteria: bondCriteria{state: activities.AgentActive, failAt: "locked", err: apperr.New(apperr.NotFound, "no bond")}}
	requireClass(t, errorCase{name: "no bond", portErr: apperr.New(apperr.NotFound, "no bond"), nonRetryable: activities.ErrTypeBondNotFound},
		execute(t, b, b.CheckBondCriteria, activities.BondCheck{AgentDID: "did:a"}))
}

// The node's criteria are floors: a check asking for weaker ones (as a
// workflow started by hand could) applies the node's, a stricter one
// stands, and the bond's age comes from the ledger's lock.
func TestCheckBondCriteriaAppliesTheNodesFloors(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	policy := registry.BondCriteria{MinAge: 30 * 24 * time.Hour, MinTransfers: 10, MinTrustBps: 5000}
	old, young := now.Add(-31*24*time.Hour), now.Add(-time.Hour)
	for _, c := range []struct {
		name     string
		criteria bondCriteria
		check    activities.BondCheck
		eligible bool
		reason   string
	}{
		{"meets the floors", bondCriteria{state: activities.AgentActive, transfers: 10, trust: 5000, lockedAt: old}, activities.BondCheck{}, true, ""},
		{"a shorter wait does not make a young bond mature", bondCriteria{state: activities.AgentActive, transfers: 99, trust: 9999, lockedAt: young},
			activities.BondCheck{MinTransfers: 1, MinTrust: 1}, false, registry.ReasonBondTooYoung},
		{"weaker transfer criterion ignored", bondCriteria{state: activities.AgentActive, transfers: 1, trust: 9999, lockedAt: old},
			activities.BondCheck{MinTransfers: 1}, false, registry.ReasonBondFewTransfers},
		{"weaker trust criterion ignored", bondCriteria{state: activities.AgentActive, transfers: 50, trust: 100, lockedAt: old},
			activities.BondCheck{MinTrust: 1}, false, registry.ReasonBondTrustTooLow},
		{"a stricter input stands", bondCriteria{state: activities.AgentActive, transfers: 10, trust: 5000, lockedAt: old},
			activities.BondCheck{MinTransfers: 11}, false, registry.ReasonBondFewTransfers},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.check.AgentDID = "did:a"
			b := &activities.BondMaturation{Criteria: c.criteria, Policy: policy, Now: func() time.Time { return now }}
			got, err := runResult[activities.BondCheckResult](t, b, b.CheckBondCriteria, c.check)
			require.NoError(t, err)
			require.Equal(t, c.eligible, got.Eligible)
			require.Equal(t, c.reason, got.Reason)
		})
	}
}
