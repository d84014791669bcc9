package activities_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/staking"
)

// stakingLedger answers every call with err, recording which it got.
type stakingLedger struct {
	err   error
	calls []string
}

func (l *stakingLedger) call(name string) error {
	l.calls = append(l.calls, name)
	return l.err
}

func (l *stakingLedger) StartRewardRun(_ context.Context, date string, _ time.Time, _ staking.Curve) (staking.RewardRun, error) {
	return staking.RewardRun{Date: date}, l.call("StartRewardRun")
}

func (l *stakingLedger) PayRewardPage(context.Context, string, int64, int) (staking.RewardPage, error) {
	return staking.RewardPage{}, l.call("PayRewardPage")
}

func (l *stakingLedger) FinishRewardRun(_ context.Context, date string) (staking.RewardRun, error) {
	return staking.RewardRun{Date: date}, l.call("FinishRewardRun")
}

func (l *stakingLedger) ReleaseUnstake(context.Context, int64) error { return l.call("ReleaseUnstake") }

func (l *stakingLedger) CompleteDueUnstakes(context.Context, int) (int, error) {
	return 0, l.call("CompleteDueUnstakes")
}

func (l *stakingLedger) MatureLock(context.Context, int64) error { return l.call("MatureLock") }

func (l *stakingLedger) MatureDueLocks(context.Context, int) (int, error) {
	return 0, l.call("MatureDueLocks")
}

// A staking step that can never succeed (bad input, unknown position, run
// never started) is final; infrastructure failures are retried. The two
// timer-driven steps retry a refusal because the term or cooldown has not
// ended by the database's clock (the workflow's clock may run ahead).
func TestStakingActivitiesClassifyLedgerErrors(t *testing.T) {
	transient := append([]errorCase{{name: "ok"}, {name: "network", portErr: errNetwork, nonRetryable: retryable}},
		codes(retryable, apperr.Unavailable, apperr.Internal, apperr.Conflict)...)
	final := codes(activities.ErrTypeStakingInvalid, apperr.Invalid, apperr.NotFound)
	run := slices.Concat(transient, final, codes(activities.ErrTypeStakingInvalid, apperr.FailedPrecondition))
	timer := slices.Concat(transient, final, codes(retryable, apperr.FailedPrecondition))
	for _, step := range []struct {
		name  string
		cases []errorCase
		run   func(*testing.T, *activities.Staking) error
	}{
		{"StartRewardRun", run, func(t *testing.T, s *activities.Staking) error {
			return execute(t, s, s.StartRewardRun, activities.RewardRunStart{Date: "2026-03-01", Cutoff: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)})
		}},
		{"PayRewardPage", run, func(t *testing.T, s *activities.Staking) error {
			return execute(t, s, s.PayRewardPage, activities.RewardPageRequest{Date: "2026-03-01", PageSize: 10})
		}},
		{"FinishRewardRun", run, func(t *testing.T, s *activities.Staking) error { return execute(t, s, s.FinishRewardRun, "2026-03-01") }},
		{"CompleteDueUnstakes", run, func(t *testing.T, s *activities.Staking) error { return execute(t, s, s.CompleteDueUnstakes, 100) }},
		{"MatureDueLocks", run, func(t *testing.T, s *activities.Staking) error { return execute(t, s, s.MatureDueLocks, 100) }},
		{"ReleaseUnstake", timer, func(t *testing.T, s *activities.Staking) error { return execute(t, s, s.ReleaseUnstake, int64(7)) }},
		{"MatureLock", timer, func(t *testing.T, s *activities.Staking) error { return execute(t, s, s.MatureLock, int64(7)) }},
	} {
		for _, c := range step.cases {
			t.Run(step.name+"/"+c.name, func(t *testing.T) {
				ledger := &stakingLedger{err: c.portErr}
				requireClass(t, c, step.run(t, &activities.Staking{Ledger: ledger, Curve: staking.DefaultCurve}))
				require.Equal(t, []string{step.name}, ledger.calls)
			})
		}
	}
}
