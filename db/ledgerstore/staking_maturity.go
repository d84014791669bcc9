package ledgerstore

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore/internal/tegdb"
	"github.com/theprotocol-dev/theprotocol/staking"
)

// MaturePosition records that locked position id's term has ended: the
// lock is lifted and the owner may unstake at once (matured_at, event
// StakeMatured keyed matured-<position>). It moves no money: the position
// stays active and keeps earning until its owner unstakes it. Withdrawal
// itself is decided by unlock_at (Unstake), so a late or missing
// lock-expiry workflow never keeps money locked; this only makes the end
// of the lock visible (API field, event).
//
// Idempotent per position: a position already marked, closed (unstaked)
// or slashed is returned as it is (Replayed) and nothing is written.
// Errors: NotFound, Invalid (a flexible position has no lock),
// FailedPrecondition (the term has not ended yet — clock skew between the
// caller's timer and the database clock; the caller retries).
func (s *Store) MaturePosition(ctx context.Context, id int64) (Position, error) {
	now := s.clock()
	var out Position
	err := s.db.Tx(ctx, func(tx pgx.Tx) error {
		row, err := s.q.StakePositionLock(ctx, tx, id)
		if err != nil {
			return db.NotFound(err, "position %d not found", id)
		}
		p := positionFromRow(row)
		step, err := staking.Transition(p.state(), staking.OpMature, now)
		switch {
		case errors.Is(err, staking.ErrNoLock):
			return apperr.New(apperr.Invalid, "position %d is in the %s tier; it has no lock to expire", id, p.Tier)
		case errors.Is(err, staking.ErrLocked):
			return apperr.New(apperr.FailedPrecondition, "position %d is locked in the %s tier until %s",
				id, p.Tier, p.UnlockAt.Format(time.RFC3339))
		case err != nil:
			return apperr.Wrap(err, apperr.Internal, "mature position %d", id)
		case step.Effect == staking.NoEffect:
			out = p
			out.Replayed = true
			return nil
		}
		if err := s.q.StakePositionSetMatured(ctx, tx, tegdb.StakePositionSetMaturedParams{ID: id, Now: now}); err != nil {
			return err
		}
		p.MaturedAt, p.UpdatedAt = &now, now
		out = p
		env, err := newEvent(EventStakeMatured, "matured-"+itoa(id), p.Owner, now, nil, positionPayload{
			PositionID: id, Owner: p.Owner, Tier: string(p.Tier), AmountUnits: p.PrincipalUnits, UnlockAt: p.UnlockAt,
		})
		if err != nil {
			return err
		}
		return s.outbox.Write(ctx, tx, env)
	})
	return out, err
}

// MatureLock is MaturePosition for the lock-expiry workflow's activity.
func (s *Store) MatureLock(ctx context.Context, positionID int64) error {
	_, err := s.MaturePosition(ctx, positionID)
	return err
}

// MatureDueLocks marks up to limit open locked positions whose term has
// ended without their lock-expiry workflow doing it (the safety net for a
// workflow that was never started: Temporal down at stake time, or a
// position staked before the workflow existed). It returns how many it
// marked.
func (s *Store) MatureDueLocks(ctx context.Context, limit int) (int, error) {
	ids, err := s.q.StakePositionsMaturityDue(ctx, s.pool, tegdb.StakePositionsMaturityDueParams{Now: s.clock(), MaxRows: int32(min(max(limit, 1), 1000))})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		p, err := s.MaturePosition(ctx, id)
		if err != nil {
			return n, err
		}
		if !p.Replayed {
			n++
		}
	}
	return n, nil
}
