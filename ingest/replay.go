package ingest

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"golang.org/x/sync/errgroup"

	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/events"
	"github.com/theprotocol-dev/theprotocol/money"
)

// Mismatch is one projection row that differs from the replay.
type Mismatch struct {
	Account    string `json:"account"`
	Bucket     string `json:"bucket"`
	Projection int64  `json:"projection"`
	Replayed   int64  `json:"replayed"`
}

// ReplayReport compares the maintained projections with a full
// recomputation from the event log.
type ReplayReport struct {
	Frame             string      `json:"frame"`
	EventRows         int64       `json:"event_rows"` // rows in the event log; OK needs it to equal the bodies replayed
	Live              AuditReport `json:"live"`
	Replayed          AuditReport `json:"replayed"`
	BalanceMismatches []Mismatch  `json:"balance_mismatches"`
	// Registries compares each registry's newest checkpoint with the log
	// (replay_recon.go): an event the log lacks shows there, not above.
	Registries []ReplayRegistry `json:"registries"`
	OK         bool             `json:"ok"`
	Duration   time.Duration    `json:"duration_ns"`
}

// MaxReportedMismatches bounds the report.
const MaxReportedMismatches = 1000

// Replay recomputes balances and audit terms from the raw events in one
// repeatable-read snapshot and compares them with the projections.
func Replay(ctx context.Context, pool *pgxpool.Pool, frame string) (ReplayReport, error) {
	start := time.Now()
	rep := ReplayReport{Frame: frame}
	err := db.NewStore(pool, "eventstore").TxOpts(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var err error
		if rep.Live, err = Audit(ctx, tx, frame); err != nil {
			return err
		}
		re, err := recompute(ctx, tx)
		if err != nil {
			return err
		}
		rep.Replayed = re.report(frame)
		rep.EventRows = re.rows
		live, err := loadBalances(ctx, tx)
		if err != nil {
			return err
		}
		rep.BalanceMismatches = compareBalances(live, re.balances, MaxReportedMismatches)
		rep.Registries, err = replayReconcile(ctx, tx)
		return err
	})
	if err != nil {
		return rep, err
	}
	live, re := rep.Live, rep.Replayed
	rep.OK = len(rep.BalanceMismatches) == 0 && re.Delta == 0 &&
		live.TokensIssued == re.TokensIssued && live.CompensationIssued == re.CompensationIssued && live.TokensDestroyed == re.TokensDestroyed &&
		live.TransitNet == re.TransitNet && live.TotalCirculating == re.TotalCirculating &&
		live.EventsApplied == re.EventsApplied && rep.EventRows == re.EventsApplied
	for _, r := range rep.Registries {
		rep.OK = rep.OK && r.OK()
	}
	rep.Duration = time.Since(start)
	return rep, nil
}

// Rebuild drops the balance and audit projections and recomputes them from
// the event log in one transaction (readers see the old or the new state,
// never a half-built one). The lock makes a concurrent ingest batch wait, so
// every event is either in the recomputation or applied on top of it.
func Rebuild(ctx context.Context, pool *pgxpool.Pool, frame string) error {
	return db.NewStore(pool, "eventstore").Tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `LOCK TABLE projection_balances, supply_audit IN EXCLUSIVE MODE`); err != nil {
			return err
		}
		re, err := recompute(ctx, tx)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM projection_balances`); err != nil {
			return err
		}
		b := re.balances
		order := b.sorted()
		i := 0
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"projection_balances"}, []string{"account", "bucket", "balance"},
			pgx.CopyFromFunc(func() ([]any, error) {
				if i == len(order) {
					return nil, nil
				}
				k, v := b.keys[order[i]], b.deltas[order[i]]
				i++
				return []any{k.account, k.bucket, v}, nil
			})); err != nil {
			return fmt.Errorf("rebuild balances: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM supply_audit WHERE frame = $1`, frame); err != nil {
			return err
		}
		t := re.terms
		if _, err := tx.Exec(ctx, `INSERT INTO supply_audit (frame, tokens_issued, tokens_destroyed, transit_net, total_circulating, events_applied, updated_at, compensation_issued)
			VALUES ($1, $2, $3, $4, $5, $6, now(), $7)`, frame, t.issued, t.destroyed, t.transitNet, t.circulating, re.events, t.compensation); err != nil {
			return fmt.Errorf("rebuild audit: %w", err)
		}
		return nil
	})
}

// recomputation is the projections derived from the raw events alone.
type recomputation struct {
	balances *balanceDeltas
	terms    auditTerms
	events   int64 // event bodies replayed
	rows     int64 // rows in the event log (must equal events)
}

func (r *recomputation) report(frame string) AuditReport {
	a := AuditReport{
		Frame: frame, TokensIssued: r.terms.issued, TokensDestroyed: r.terms.destroyed,
		TransitNet: r.terms.transitNet, TotalCirculating: r.terms.circulating, EventsApplied: r.events,
		CompensationIssued: r.terms.compensation,
	}
	a.NetSupply = a.TokensIssued + a.CompensationIssued - a.TokensDestroyed + a.TransitNet
	a.Delta = a.NetSupply - a.TotalCirculating
	return a
}

func (r *recomputation) merge(o *recomputation) error {
	for i, k := range o.balances.keys {
		if err := r.balances.add(k, o.balances.deltas[i]); err != nil {
			return err
		}
	}
	for _, p := range [][2]*int64{
		{&r.terms.issued, &o.terms.issued}, {&r.terms.destroyed, &o.terms.destroyed},
		{&r.terms.transitNet, &o.terms.transitNet}, {&r.terms.circulating, &o.terms.circulating},
		{&r.terms.compensation, &o.terms.compensation},
	} {
		s, err := money.Add(*p[0], *p[1])
		if err != nil {
			return fmt.Errorf("projection overflow: %w", err)
		}
		*p[0] = s
	}
	r.events += o.events
	return nil
}

// replayChunk is a unit of replay work: a segment, or legacy json bodies.
type replayChunk struct {
	codec   string
	segment []byte
	count   int
	skipped []int32
	bodies  [][]byte
}

// recompute reads every event body in q's snapshot (segments, and the json
// envelopes of rows ingested before segments existed) and projects them
// with accumulate. Decoding is spread over the cores; sums are exact
// integers, so the order does not matter.
func recompute(ctx context.Context, tx pgx.Tx) (*recomputation, error) {
	workers := max(1, runtime.GOMAXPROCS(0))
	chunks := make(chan replayChunk, workers)
	parts := make([]*recomputation, workers)
	g, gctx := errgroup.WithContext(ctx)
	for w := range workers {
		part := &recomputation{balances: newBalanceDeltas(0)}
		parts[w] = part
		g.Go(func() error {
			for c := range chunks {
				bodies := c.bodies
				if c.segment != nil {
					var err error
					if bodies, err = decodeSegment(c.codec, c.segment, c.count); err != nil {
						return err
					}
				}
				skip := make([]bool, len(bodies))
				for _, pos := range c.skipped {
					if pos < 0 || int(pos) >= len(skip) {
						return fmt.Errorf("corrupt segment: skipped position %d of %d", pos, len(skip))
					}
					skip[pos] = true
				}
				dec := events.NewDecoder()
				for pos, b := range bodies {
					if skip[pos] {
						continue
					}
					var env events.Envelope
					if err := decodeEnvelope(dec, b, &env); err != nil {
						return fmt.Errorf("replay: undecodable event body: %w", err)
					}
					if err := accumulate(&env, part.balances, &part.terms, 1); err != nil {
						return err
					}
					part.events++
				}
			}
			return nil
		})
	}
	var rows int64
	g.Go(func() error {
		defer close(chunks)
		send := func(c replayChunk) error {
			select {
			case chunks <- c:
				return nil
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		segs, err := tx.Query(gctx, `SELECT codec, events, skipped, data FROM event_segments ORDER BY id`)
		if err != nil {
			return fmt.Errorf("read segments: %w", err)
		}
		for segs.Next() {
			var codec string
			var n int32
			var skipped []int32
			var data []byte
			if err := segs.Scan(&codec, &n, &skipped, &data); err != nil {
				segs.Close()
				return fmt.Errorf("read segments: %w", err)
			}
			if err := send(replayChunk{codec: codec, segment: data, count: int(n), skipped: skipped}); err != nil {
				segs.Close()
				return err
			}
		}
		if err := segs.Err(); err != nil {
			return fmt.Errorf("read segments: %w", err)
		}
		legacy, err := tx.Query(gctx, `SELECT envelope::text FROM events WHERE envelope IS NOT NULL`)
		if err != nil {
			return fmt.Errorf("read legacy events: %w", err)
		}
		var batch [][]byte
		for legacy.Next() {
			var body string
			if err := legacy.Scan(&body); err != nil {
				legacy.Close()
				return fmt.Errorf("read legacy events: %w", err)
			}
			batch = append(batch, []byte(body))
			if len(batch) == 1000 {
				if err := send(replayChunk{bodies: batch}); err != nil {
					legacy.Close()
					return err
				}
				batch = nil
			}
		}
		if err := legacy.Err(); err != nil {
			return fmt.Errorf("read legacy events: %w", err)
		}
		if len(batch) > 0 {
			if err := send(replayChunk{bodies: batch}); err != nil {
				return err
			}
		}
		return tx.QueryRow(gctx, `SELECT count(*) FROM events`).Scan(&rows)
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	total := parts[0]
	for _, p := range parts[1:] {
		if err := total.merge(p); err != nil {
			return nil, err
		}
	}
	total.rows = rows
	return total, nil
}

func loadBalances(ctx context.Context, tx pgx.Tx) (*balanceDeltas, error) {
	rows, err := tx.Query(ctx, `SELECT account, bucket, balance FROM projection_balances`)
	if err != nil {
		return nil, fmt.Errorf("read projection: %w", err)
	}
	out := newBalanceDeltas(0)
	var k balanceKey
	var v int64
	_, err = pgx.ForEachRow(rows, []any{&k.account, &k.bucket, &v}, func() error {
		return out.add(k, v)
	})
	if err != nil {
		return nil, fmt.Errorf("read projection: %w", err)
	}
	return out, nil
}

// compareBalances lists the (account, bucket) pairs whose projected and
// replayed balances differ (a missing row counts as 0), in key order, at
// most limit of them.
func compareBalances(live, replayed *balanceDeltas, limit int) []Mismatch {
	union := newBalanceDeltas(live.len())
	for _, b := range []*balanceDeltas{live, replayed} {
		for _, k := range b.keys {
			_ = union.add(k, 0)
		}
	}
	out := []Mismatch{}
	for _, i := range union.sorted() {
		k := union.keys[i]
		if l, r := live.get(k), replayed.get(k); l != r {
			out = append(out, Mismatch{Account: k.account, Bucket: k.bucket, Projection: l, Replayed: r})
			if len(out) == limit {
				break
			}
		}
	}
	return out
}

// ProgressReader reads a source's high-water mark from the EventStore
// database (the in-process implementation of relay.ProgressReader).
type ProgressReader struct{ Pool *pgxpool.Pool }

// HighWaterMark returns the highest sequence number up to which every
// event of the source has arrived (0 if none).
func (p ProgressReader) HighWaterMark(ctx context.Context, registry, source string) (int64, error) {
	var hwm int64
	err := p.Pool.QueryRow(ctx, `SELECT hwm FROM source_progress WHERE registry = $1 AND source = $2`, registry, source).Scan(&hwm)
	if db.IsNotFound(err) {
		return 0, nil
	}
	return hwm, err
}
