package ledgerstore

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/theprotocol-dev/theprotocol/events"
)

// HoldEvents builds events that commit in the same transaction as a hold's
// state change (the hold as it is after the change; t is the transfer a
// post made, nil otherwise). Returning an error rolls the change back, so
// it may also refuse the change (a payment token that does not match its
// hold). Flows built on holds, such as paid calls, use it to record their
// own step with the money movement instead of after it.
type HoldEvents func(h Hold, t *Transfer) ([]events.Envelope, error)

// PlaceHoldWith is PlaceHold plus extra's events. A replay (same
// idempotency key) returns the original hold without calling extra: its
// events committed with it.
func (s *Store) PlaceHoldWith(ctx context.Context, r HoldRequest, extra HoldEvents) (Hold, error) {
	return s.placeHold(ctx, r, extra)
}

// PostHoldWith is PostHold plus extra's events; extra is not called when
// the hold was already posted (Replayed).
func (s *Store) PostHoldWith(ctx context.Context, id uuid.UUID, amountUnits int64, extra HoldEvents) (Hold, Transfer, error) {
	return s.postHold(ctx, id, amountUnits, extra)
}

// VoidHoldWith is VoidHold plus extra's events; extra is not called when
// the hold was already voided or expired (Replayed).
func (s *Store) VoidHoldWith(ctx context.Context, id uuid.UUID, extra HoldEvents) (Hold, error) {
	return s.voidHold(ctx, id, extra)
}

func (s *Store) writeExtraHoldEvents(ctx context.Context, tx pgx.Tx, extra HoldEvents, h Hold, t *Transfer, _ time.Time) error {
	if extra == nil {
		return nil
	}
	envs, err := extra(h, t)
	if err != nil || len(envs) == 0 {
		return err
	}
	return s.writeEvents(ctx, tx, envs)
}
