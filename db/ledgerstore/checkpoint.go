package ledgerstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore/internal/tegdb"
	"github.com/theprotocol-dev/theprotocol/events"
	"github.com/theprotocol-dev/theprotocol/recon"
)

// Checkpoint limits.
const (
	// MaxCheckpointQueued bounds the outbox rows a checkpoint numbers
	// for a relay that has fallen behind (see db.OutboxWriter.WriteCut).
	MaxCheckpointQueued = 200_000
	// checkpointPage is the balances read per round trip.
	checkpointPage = 10_000
	// checkpointBusyRetries bounds the retries while the relay holds rows
	// a checkpoint must number (each waits a few milliseconds).
	checkpointBusyRetries = 100
)

var (
	checkpoints = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ledger_balance_checkpoints_total",
		Help: "Balance checkpoints written to the outbox.",
	})
	checkpointSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "ledger_balance_checkpoint_seconds",
		Help:    "Time to write one balance checkpoint (the relay pauses for it; transfers do not).",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
	})
)

// CheckpointCollectors are the checkpoint metrics, for the node's registry.
func CheckpointCollectors() []prometheus.Collector {
	return []prometheus.Collector{checkpoints, checkpointSeconds}
}

// Checkpoint is a balance checkpoint this TEG wrote.
type Checkpoint struct {
	CoversSeq int64
	TakenAt   time.Time
	recon.Summary
}

// WriteCheckpoint writes a BalanceCheckpoint event: in one repeatable-read
// transaction it numbers every outbox row committed so far (the event
// covers exactly those: CoversSeq), reads every balance in that same
// snapshot, summarises them (recon.Summarizer: sums per bucket and account
// class, a SHA-256 digest of the non-zero balances) and writes the event,
// which the relay numbers after them, with its record in
// balance_checkpoints.
//
// It blocks no transfer: the snapshot read takes no row lock and writers
// never wait for the relay's lock, which the checkpoint holds (the relay
// pauses for the read). Errors: Unavailable when the relay is too far
// behind to number its backlog in one checkpoint, or kept numbering rows
// through every retry.
func (s *Store) WriteCheckpoint(ctx context.Context) (Checkpoint, error) {
	start := time.Now()
	for attempt := 0; ; attempt++ {
		now := s.clock()
		var out Checkpoint
		err := s.db.TxOpts(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead}, func(tx pgx.Tx) error {
			covers, err := s.outbox.WriteCut(ctx, tx, MaxCheckpointQueued, now, func(covers int64) (events.Envelope, error) {
				sum, err := s.summarizeBalances(ctx, tx)
				if err != nil {
					return events.Envelope{}, err
				}
				out = Checkpoint{CoversSeq: covers, TakenAt: now, Summary: sum}
				env, err := events.New(events.TypeBalanceCheckpoint, events.BalanceCheckpointKey(s.outbox.Registry, covers), s.outbox.Registry, now)
				if err != nil {
					return events.Envelope{}, err
				}
				if env.Payload, err = json.Marshal(events.BalanceCheckpoint{CoversSeq: covers, TakenAt: now, Summary: sum}); err != nil {
					return events.Envelope{}, fmt.Errorf("encode checkpoint: %w", err)
				}
				return env, nil
			})
			if err != nil {
				return err
			}
			return s.q.BalanceCheckpointInsert(ctx, tx, tegdb.BalanceCheckpointInsertParams{
				CoversSeq: covers, TakenAt: now, Accounts: out.Accounts, Digest: out.Digest,
			})
		})
		switch {
		case err == nil:
			checkpoints.Inc()
			checkpointSeconds.Observe(time.Since(start).Seconds())
			return out, nil
		case errors.Is(err, db.ErrOutboxBusy) && attempt < checkpointBusyRetries:
			select {
			case <-ctx.Done():
				return Checkpoint{}, ctx.Err()
			case <-time.After(time.Duration(2+rand.IntN(8)) * time.Millisecond):
			}
		case errors.Is(err, db.ErrOutboxBusy), errors.Is(err, db.ErrOutboxBacklog):
			return Checkpoint{}, apperr.Wrap(err, apperr.Unavailable, "balance checkpoint not written")
		default:
			return Checkpoint{}, err
		}
	}
}

// summarizeBalances reads every balance in tx's snapshot, a page at a
// time in key order, into a summary.
func (s *Store) summarizeBalances(ctx context.Context, tx pgx.Tx) (recon.Summary, error) {
	sz := recon.NewSummarizer()
	p := tegdb.BalancesPageParams{MaxRows: checkpointPage}
	for {
		rows, err := s.q.BalancesPage(ctx, tx, p)
		if err != nil {
			return recon.Summary{}, fmt.Errorf("read balances: %w", err)
		}
		for _, r := range rows {
			if err := sz.Add(recon.Balance{Account: r.AccountID, Bucket: r.Bucket, Units: r.Units}); err != nil {
				return recon.Summary{}, err
			}
		}
		if len(rows) < checkpointPage {
			return sz.Summary(), nil
		}
		last := rows[len(rows)-1]
		p.AfterAccount, p.AfterBucket = last.AccountID, last.Bucket
	}
}

// LastCheckpoint returns the newest checkpoint this TEG wrote (found false
// when there is none yet). Its sums are not kept, only its digest.
func (s *Store) LastCheckpoint(ctx context.Context) (cp Checkpoint, found bool, err error) {
	r, err := s.q.BalanceCheckpointLast(ctx, s.pool)
	if db.IsNotFound(err) {
		return Checkpoint{}, false, nil
	}
	if err != nil {
		return Checkpoint{}, false, err
	}
	return Checkpoint{CoversSeq: r.CoversSeq, TakenAt: r.TakenAt.UTC(), Summary: recon.Summary{Accounts: r.Accounts, Digest: r.Digest}}, true, nil
}
