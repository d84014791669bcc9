package ingest

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/theprotocol-dev/theprotocol/db"
)

// recomputeBalancesSQL derives every (account, bucket) balance from the raw
// events alone, qualifying accounts exactly like Qualify.
const recomputeBalancesSQL = `
SELECT CASE WHEN p->>'account' LIKE 'did:%' OR strpos(p->>'account', '/') > 0 THEN p->>'account' ELSE e.registry || '/' || (p->>'account') END AS account,
       p->>'bucket' AS bucket,
       sum((p->>'delta')::bigint)::bigint AS balance
FROM events AS e, json_array_elements(coalesce(e.envelope->'postings', '[]'::json)) AS p
GROUP BY 1, 2`

// recomputeAuditSQL derives the supply audit's terms from the raw events.
const recomputeAuditSQL = `
WITH p AS (
  SELECT regexp_replace(p->>'account', '^.*/', '') AS account, (p->>'delta')::bigint AS delta
  FROM events AS e, json_array_elements(coalesce(e.envelope->'postings', '[]'::json)) AS p
  WHERE p->>'bucket' NOT LIKE 'wrapped:%'
)
SELECT
  coalesce(sum(-delta) FILTER (WHERE account = 'issuance' AND delta < 0), 0)::bigint,
  coalesce(sum(delta)  FILTER (WHERE account = 'issuance' AND delta > 0), 0)::bigint,
  coalesce(sum(-delta) FILTER (WHERE account LIKE 'xframe:%'), 0)::bigint,
  coalesce(sum(delta)  FILTER (WHERE account <> 'issuance' AND account NOT LIKE 'xframe:%'), 0)::bigint,
  (SELECT count(*) FROM events)::bigint
FROM p`

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
	Frame             string        `json:"frame"`
	Live              AuditReport   `json:"live"`
	Replayed          AuditReport   `json:"replayed"`
	BalanceMismatches []Mismatch    `json:"balance_mismatches"`
	OK                bool          `json:"ok"`
	Duration          time.Duration `json:"duration_ns"`
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
		r := &rep.Replayed
		r.Frame = frame
		if err := tx.QueryRow(ctx, recomputeAuditSQL).Scan(&r.TokensIssued, &r.TokensDestroyed, &r.TransitNet, &r.TotalCirculating, &r.EventsApplied); err != nil {
			return fmt.Errorf("recompute audit: %w", err)
		}
		r.NetSupply = r.TokensIssued - r.TokensDestroyed + r.TransitNet
		r.Delta = r.NetSupply - r.TotalCirculating
		rows, err := tx.Query(ctx, `WITH replay AS (`+recomputeBalancesSQL+`)
			SELECT coalesce(b.account, r.account), coalesce(b.bucket, r.bucket), coalesce(b.balance, 0), coalesce(r.balance, 0)
			FROM projection_balances AS b FULL OUTER JOIN replay AS r ON b.account = r.account AND b.bucket = r.bucket
			WHERE coalesce(b.balance, 0) <> coalesce(r.balance, 0)
			ORDER BY 1, 2 LIMIT $1`, MaxReportedMismatches)
		if err != nil {
			return fmt.Errorf("compare balances: %w", err)
		}
		rep.BalanceMismatches, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Mismatch, error) {
			var m Mismatch
			err := row.Scan(&m.Account, &m.Bucket, &m.Projection, &m.Replayed)
			return m, err
		})
		return err
	})
	if err != nil {
		return rep, err
	}
	live, re := rep.Live, rep.Replayed
	rep.OK = len(rep.BalanceMismatches) == 0 && re.Delta == 0 &&
		live.TokensIssued == re.TokensIssued && live.TokensDestroyed == re.TokensDestroyed &&
		live.TransitNet == re.TransitNet && live.TotalCirculating == re.TotalCirculating &&
		live.EventsApplied == re.EventsApplied
	rep.Duration = time.Since(start)
	return rep, nil
}

// Rebuild drops the balance and audit projections and recomputes them from
// the event log in one transaction (readers see the old or the new state,
// never a half-built one).
func Rebuild(ctx context.Context, pool *pgxpool.Pool, frame string) error {
	return db.NewStore(pool, "eventstore").Tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `LOCK TABLE projection_balances, supply_audit IN EXCLUSIVE MODE`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM projection_balances`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO projection_balances (account, bucket, balance) `+recomputeBalancesSQL+` ORDER BY 1, 2`); err != nil {
			return fmt.Errorf("rebuild balances: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM supply_audit WHERE frame = $1`, frame); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO supply_audit (frame, tokens_issued, tokens_destroyed, transit_net, total_circulating, events_applied, updated_at)
			SELECT $1, a.*, now() FROM (`+recomputeAuditSQL+`) AS a`, frame)
		if err != nil {
			return fmt.Errorf("rebuild audit: %w", err)
		}
		return nil
	})
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
