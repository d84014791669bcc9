package activities_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/apperr"
)

// bondLedger records which move it was asked for and answers err.
type bondLedger struct {
	err   error
	moves []string
}

func (l *bondLedger) ReleaseBond(_ context.Context, did string, _ int64, key string) error {
	l.moves = append(l.moves, "release "+did+" "+key)
	return l.err
}

func (l *bondLedger) ForfeitBond(_ context.Context, did string, _ int64, key string) error {
	l.moves = append(l.moves, "forfeit "+did+" "+key)
	return l.err
}

func (l *bondLedger) VoidBond(_ context.Context, did, dev string, _ int64, key string) error {
	l.moves = append(l.moves, "void "+did+" to "+dev+" "+key)
	return l.err
}

// bondCriteria answers the maturity inputs, or err from the step named by
// failAt.
type bondCriteria struct {
	state            string
	transfers, trust int64
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

// A bond the ledger does not hold, or cannot move for lack of funds, is
// final; every other ledger failure is retried (money, once decided, must
// move).
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
		{"VoidBond", func(b *activities.BondMaturation) any { return b.VoidBond }, "void did:a to dev:1 k"},
		{"ForfeitBond", func(b *activities.BondMaturation) any { return b.ForfeitBond }, "forfeit did:a k"},
	} {
		for _, c := range cases {
			t.Run(step.name+"/"+c.name, func(t *testing.T) {
				ledger := &bondLedger{err: c.portErr}
				b := &activities.BondMaturation{Ledger: ledger}
				requireClass(t, c, execute(t, b, step.fn(b), move))
				require.Equal(t, []string{step.want}, ledger.moves)
			})
		}
	}
}

// Reading the maturity criteria never fails for good: whatever the
// registry or the ledger answers, the check is retried.
func TestCheckBondCriteriaRetriesEveryReadError(t *testing.T) {
	cases := append([]errorCase{{name: "network", portErr: errNetwork}},
		codes(retryable, apperr.NotFound, apperr.Invalid, apperr.Unavailable, apperr.Internal)...)
	for _, step := range []string{"state", "transfers", "trust"} {
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
