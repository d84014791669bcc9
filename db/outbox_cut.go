package db

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/theprotocol-dev/theprotocol/db/internal/commondb"
	"github.com/theprotocol-dev/theprotocol/events"
)

// ErrOutboxBusy means the relay was numbering rows when a cut was tried;
// the caller rolls back (letting the relay finish) and tries again.
var ErrOutboxBusy = errors.New("outbox: the relay is numbering rows")

// ErrOutboxBacklog means more rows wait to be numbered than a cut takes:
// the relay is not keeping up (or not running), and a checkpoint now would
// stall it for the whole backlog.
var ErrOutboxBacklog = errors.New("outbox: too many rows wait for the relay")

// cutBatch is the size of the numbering batches a cut records, the
// relay's own default, so retention deletes them like any other.
const cutBatch = 5000

// WriteCut writes an event describing the database as of an exact point
// of its outbox numbering: the event's builder learns coversSeq, and every
// event numbered up to coversSeq was committed before tx's snapshot while
// every later one was not; the event itself is numbered later, by the
// relay (the event must therefore state coversSeq itself).
//
// Why this needs the relay's lock: writers commit out of id order and the
// relay numbers what it finds committed, so without it a row committed just
// after the snapshot could be numbered before the checkpoint. Holding
// outbox_relay_state locked (the relay takes it to number and to move its
// published mark) and numbering every committed row still queued, in the
// snapshot the builder then reads, closes that gap. Writers are never
// blocked: they only insert outbox and queue rows.
//
// tx must be a REPEATABLE READ transaction and WriteCut its first
// statement (the snapshot is taken after the lock). At most maxQueued
// queued rows are numbered; more is ErrOutboxBacklog. A row the relay is
// numbering at that moment is ErrOutboxBusy.
func (w *OutboxWriter) WriteCut(ctx context.Context, tx pgx.Tx, maxQueued int, now time.Time,
	build func(coversSeq int64) (events.Envelope, error)) (coversSeq int64, err error) {
	if maxQueued <= 0 {
		return 0, fmt.Errorf("outbox: cut of %d rows", maxQueued)
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE outbox_relay_state IN EXCLUSIVE MODE`); err != nil {
		return 0, fmt.Errorf("outbox: lock relay state: %w", err)
	}
	ids, err := w.q.OutboxQueueClaimAllNowait(ctx, tx, int32(maxQueued+1))
	if SQLState(err) == "55P03" { // lock_not_available
		return 0, ErrOutboxBusy
	}
	if err != nil {
		return 0, fmt.Errorf("outbox: claim queued rows: %w", err)
	}
	if len(ids) > maxQueued {
		return 0, fmt.Errorf("%w (more than %d)", ErrOutboxBacklog, maxQueued)
	}
	slices.Sort(ids)
	next, err := w.q.OutboxRelayNextSeq(ctx, tx)
	if err != nil {
		return 0, err
	}
	for chunk := range slices.Chunk(ids, cutBatch) {
		last := next + int64(len(chunk)) - 1
		if err := w.q.OutboxSeqBatchInsert(ctx, tx, commondb.OutboxSeqBatchInsertParams{FirstSeq: next, LastSeq: last, Ids: chunk, Now: now}); err != nil {
			return 0, fmt.Errorf("outbox: number queued rows: %w", err)
		}
		next = last + 1
	}
	coversSeq = next - 1
	env, err := build(coversSeq)
	if err != nil {
		return 0, err
	}
	if err := w.q.OutboxRelaySetNextSeq(ctx, tx, next); err != nil {
		return 0, err
	}
	// The event itself is queued like any other: the relay numbers it
	// (after coversSeq) and, finding numbers it did not give, publishes
	// everything above its mark, the rows numbered here included.
	if err := w.Write(ctx, tx, env); err != nil {
		return 0, err
	}
	return coversSeq, nil
}
