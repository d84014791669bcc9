package activities

import (
	"context"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/staking"
)

// ErrTypeStakingInvalid marks a staking step that can never succeed (bad
// input, unknown position, run never started): not retryable.
const ErrTypeStakingInvalid = "StakingInvalid"

// StakingLedger is the TEG side of staking (ledgerstore.Store implements
// it). Every method is idempotent: reward pages on (date, position), the
// unstake release and the lock expiry on the position.
type StakingLedger interface {
	StartRewardRun(ctx context.Context, date string, cutoff time.Time, curve staking.Curve) (staking.RewardRun, error)
	PayRewardPage(ctx context.Context, date string, afterID int64, limit int) (staking.RewardPage, error)
	FinishRewardRun(ctx context.Context, date string) (staking.RewardRun, error)
	ReleaseUnstake(ctx context.Context, positionID int64) error
	CompleteDueUnstakes(ctx context.Context, limit int) (int, error)
	MatureLock(ctx context.Context, positionID int64) error
	MatureDueLocks(ctx context.Context, limit int) (int, error)
}

// Staking are the staking workflows' activities.
type Staking struct {
	Ledger StakingLedger
	Curve  staking.Curve // the APY curve reward runs use (staking.DefaultCurve)
}

// RewardRunStart names a day's run: pay positions created before Cutoff.
type RewardRunStart struct {
	Date   string // YYYY-MM-DD
	Cutoff time.Time
}

// RewardPageRequest is one page of a run.
type RewardPageRequest struct {
	Date     string
	AfterID  int64
	PageSize int
}

// StartRewardRun fixes the day's rates, total due and pro-rata factor
// (once per date).
func (s *Staking) StartRewardRun(ctx context.Context, in RewardRunStart) (staking.RewardRun, error) {
	r, err := s.Ledger.StartRewardRun(ctx, in.Date, in.Cutoff, s.Curve)
	return r, stakingErr(err)
}

// PayRewardPage pays one page of positions.
func (s *Staking) PayRewardPage(ctx context.Context, in RewardPageRequest) (staking.RewardPage, error) {
	p, err := s.Ledger.PayRewardPage(ctx, in.Date, in.AfterID, in.PageSize)
	if err == nil {
		activity.GetLogger(ctx).Debug("reward page paid", "date", in.Date, "after", in.AfterID, "paid", p.Paid, "units", p.PaidUnits)
	}
	return p, stakingErr(err)
}

// FinishRewardRun completes the run and publishes its shortfall metric.
func (s *Staking) FinishRewardRun(ctx context.Context, date string) (staking.RewardRun, error) {
	r, err := s.Ledger.FinishRewardRun(ctx, date)
	return r, stakingErr(err)
}

// ReleaseUnstake ends a flexible position's cooldown (funds back to
// liquid). A release refused because the cooldown has not ended (clock
// skew between Temporal and the database) is retried.
func (s *Staking) ReleaseUnstake(ctx context.Context, positionID int64) error {
	err := s.Ledger.ReleaseUnstake(ctx, positionID)
	if apperr.Is(err, apperr.FailedPrecondition) {
		return err
	}
	return stakingErr(err)
}

// CompleteDueUnstakes releases up to limit requests whose cooldown ended
// without their workflow doing it.
func (s *Staking) CompleteDueUnstakes(ctx context.Context, limit int) (int, error) {
	n, err := s.Ledger.CompleteDueUnstakes(ctx, limit)
	return n, stakingErr(err)
}

// MatureLock records the end of a locked position's term (the owner may
// unstake it at once). Like ReleaseUnstake, a refusal because the term has
// not ended by the database's clock is retried.
func (s *Staking) MatureLock(ctx context.Context, positionID int64) error {
	err := s.Ledger.MatureLock(ctx, positionID)
	if apperr.Is(err, apperr.FailedPrecondition) {
		return err
	}
	return stakingErr(err)
}

// MatureDueLocks marks up to limit locked positions whose term ended
// without their lock-expiry workflow marking them.
func (s *Staking) MatureDueLocks(ctx context.Context, limit int) (int, error) {
	n, err := s.Ledger.MatureDueLocks(ctx, limit)
	return n, stakingErr(err)
}

func stakingErr(err error) error {
	if err == nil {
		return nil
	}
	switch apperr.CodeOf(err) {
	case apperr.Invalid, apperr.NotFound, apperr.FailedPrecondition:
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeStakingInvalid, err)
	}
	return err
}
