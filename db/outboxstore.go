package db

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/theprotocol-dev/theprotocol/db/internal/commondb"
)

// OutboxRow is a numbered outbox row as the relay publishes it.
type OutboxRow struct {
	Seq      int64 // gap-free per database, assigned by Sequence
	Subject  string
	Envelope []byte
}

// OutboxStore is the relay's side of one database's outbox: electing the
// single relay, numbering committed rows, reading them back for publishing
// or re-publishing, moving the published mark and retention. Writers use
// OutboxWriter instead.
type OutboxStore struct {
	store *Store
	q     *commondb.Queries
}

// NewOutboxStore returns the outbox store of the database behind pool.
func NewOutboxStore(pool *pgxpool.Pool) *OutboxStore {
	return &OutboxStore{store: NewStore(pool, "outbox"), q: commondb.New()}
}

// relayLockKey derives the advisory-lock key electing the database's relay.
const relayLockKey = 0x7468_6570_726f_74 // "theprot"

// ErrRelayLockHeld says another process holds the database's relay lock:
// this one is a standby, not failing.
var ErrRelayLockHeld = errors.New("another relay holds this database's lock")

// WithRelayLock runs fn while holding the database's relay lock (a session
// advisory lock on a connection of its own), and fails at once with
// ErrRelayLockHeld when another process holds it.
func (o *OutboxStore) WithRelayLock(ctx context.Context, fn func() error) error {
	conn, err := o.store.Pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, int64(relayLockKey)).Scan(&got); err != nil {
		return err
	}
	if !got {
		return ErrRelayLockHeld
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(relayLockKey)) //nolint:errcheck
	return fn()
}

// Sequence numbers up to maxRows rows committed since the last pass, in id
// order, in one short transaction: it takes them off outbox_queue and
// records the assignment as one outbox_seq_batches row stamped now (the
// outbox rows themselves are never rewritten). It returns the rows it
// numbered, in sequence order. An idle pass writes nothing.
func (o *OutboxStore) Sequence(ctx context.Context, maxRows int, now time.Time) ([]OutboxRow, error) {
	var out []OutboxRow
	err := o.store.Tx(ctx, func(tx pgx.Tx) error {
		out = nil
		ids, err := o.q.OutboxClaimQueued(ctx, tx, int32(maxRows))
		if err != nil || len(ids) == 0 {
			return err
		}
		slices.Sort(ids)
		next, err := o.q.OutboxRelayNextSeq(ctx, tx)
		if err != nil {
			return err
		}
		rows, err := o.q.OutboxByIDRanges(ctx, tx, idRuns(ids))
		if err != nil {
			return err
		}
		claimed := make(map[int64]bool, len(ids))
		for _, id := range ids {
			claimed[id] = true
		}
		rows = slices.DeleteFunc(rows, func(row commondb.OutboxByIDRangesRow) bool { return !claimed[row.ID] })
		if len(rows) != len(ids) {
			return fmt.Errorf("outbox: %d of %d queued rows missing", len(ids)-len(rows), len(ids))
		}
		slices.SortFunc(rows, func(a, b commondb.OutboxByIDRangesRow) int { return cmp.Compare(a.ID, b.ID) })
		out = make([]OutboxRow, len(rows))
		for i, row := range rows {
			out[i] = OutboxRow{next + int64(i), row.Subject, row.Envelope}
		}
		last := next + int64(len(ids)) - 1
		if err := o.q.OutboxSeqBatchInsert(ctx, tx, commondb.OutboxSeqBatchInsertParams{
			FirstSeq: next, LastSeq: last, Ids: ids, Now: now,
		}); err != nil {
			return err
		}
		return o.q.OutboxRelaySetNextSeq(ctx, tx, last+1)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// idRuns covers sorted ids with ranges, starting a new one where the next
// id is more than runGap past the last (ids in between are read and
// dropped: rows numbered earlier or not yet visible).
func idRuns(ids []int64) commondb.OutboxByIDRangesParams {
	const runGap = 64
	var p commondb.OutboxByIDRangesParams
	for i, id := range ids {
		if i == 0 || id-ids[i-1] > runGap {
			p.Los = append(p.Los, id)
			p.His = append(p.His, id)
			continue
		}
		p.His[len(p.His)-1] = id
	}
	return p
}

// Unpublished returns up to maxRows numbered rows above the published mark,
// in sequence order.
func (o *OutboxStore) Unpublished(ctx context.Context, maxRows int) ([]OutboxRow, error) {
	rows, err := o.q.OutboxUnpublished(ctx, o.store.Pool, int32(maxRows))
	if err != nil {
		return nil, err
	}
	out := make([]OutboxRow, len(rows))
	for i, row := range rows {
		out[i] = OutboxRow{row.SourceSeq, row.Subject, row.Envelope}
	}
	return out, nil
}

// Range returns up to maxRows already published rows numbered from..to, in
// sequence order, for re-publishing a gap.
func (o *OutboxStore) Range(ctx context.Context, from, to int64, maxRows int) ([]OutboxRow, error) {
	rows, err := o.q.OutboxRange(ctx, o.store.Pool, commondb.OutboxRangeParams{FromSeq: from, ToSeq: to, MaxRows: int32(maxRows)})
	if err != nil {
		return nil, err
	}
	out := make([]OutboxRow, len(rows))
	for i, row := range rows {
		out[i] = OutboxRow{row.SourceSeq, row.Subject, row.Envelope}
	}
	return out, nil
}

// PublishedSeq is the published mark: every row up to it was acknowledged
// by the broker.
func (o *OutboxStore) PublishedSeq(ctx context.Context) (int64, error) {
	return o.q.OutboxMaxPublishedSeq(ctx, o.store.Pool)
}

// MarkPublished moves the published mark up to seq (never back).
func (o *OutboxStore) MarkPublished(ctx context.Context, seq int64) error {
	return o.q.OutboxMarkPublished(ctx, o.store.Pool, seq)
}

// Lag counts the rows not yet published (queued or numbered above the mark)
// and returns the time the oldest of them occurred, now when there is none.
func (o *OutboxStore) Lag(ctx context.Context, now time.Time) (rows int64, oldest time.Time, err error) {
	lag, err := o.q.OutboxCountUnpublished(ctx, o.store.Pool, now)
	if err != nil {
		return 0, time.Time{}, err
	}
	return lag.Rows, lag.Oldest, nil
}

// DeletePublishedBefore deletes whole numbering batches made before cutoff
// whose rows the EventStore acknowledged (all numbered up to ackedSeq),
// oldest first: the oldest one, and further ones while the rows stay within
// maxRows. It returns how many rows it deleted.
func (o *OutboxStore) DeletePublishedBefore(ctx context.Context, cutoff time.Time, ackedSeq, maxRows int64) (int64, error) {
	return o.q.OutboxDeletePublishedBefore(ctx, o.store.Pool, commondb.OutboxDeletePublishedBeforeParams{
		Cutoff: cutoff, AckedSeq: ackedSeq, MaxRows: maxRows,
	})
}
