package ledgerstore_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/events"
	"github.com/theprotocol-dev/theprotocol/recon"
)

// outboxSeq is the sequence number the relay's numbering gave the event
// with key (0: not numbered).
func (e *env) outboxSeq(key string) int64 {
	e.t.Helper()
	var seq int64
	require.NoError(e.t, e.pool.QueryRow(e.ctx, `
		SELECT coalesce((SELECT b.first_seq + u.ord - 1 FROM outbox o
			JOIN outbox_seq_batches b ON o.id = ANY(b.ids)
			CROSS JOIN LATERAL unnest(b.ids) WITH ORDINALITY AS u(id, ord)
			WHERE o.idempotency_key = $1 AND u.id = o.id), 0)`, key).Scan(&seq))
	return seq
}

// summary recomputes the summary of the balances table as it is now.
func (e *env) summary() recon.Summary {
	e.t.Helper()
	rows, err := e.pool.Query(e.ctx, `SELECT account_id, bucket, units FROM balances`)
	require.NoError(e.t, err)
	var bs []recon.Balance
	for rows.Next() {
		var b recon.Balance
		require.NoError(e.t, rows.Scan(&b.Account, &b.Bucket, &b.Units))
		bs = append(bs, b)
	}
	require.NoError(e.t, rows.Err())
	s, err := recon.Summarize(bs)
	require.NoError(e.t, err)
	return s
}

func TestWriteCheckpoint(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	a, b := e.agent(100*avt), e.agent(0)
	dev := e.developer(5 * avt)
	_, err := e.store.Transfer(e.ctx, ledgerstore.TransferRequest{From: a, To: b, AmountUnits: 10 * avt, IdempotencyKey: "t1"})
	require.NoError(t, err)
	_, err = e.store.Transfer(e.ctx, ledgerstore.TransferRequest{From: dev, To: a, AmountUnits: avt, IdempotencyKey: "t2"})
	require.NoError(t, err)
	queued := e.count(`SELECT count(*) FROM outbox`)
	require.Positive(t, queued)

	// A transaction still open when the checkpoint is taken: its event must
	// be numbered after the checkpoint, since the checkpoint cannot see it.
	open, err := e.pool.Begin(e.ctx)
	require.NoError(t, err)
	defer open.Rollback(context.Background()) //nolint:errcheck
	w := db.NewOutboxWriter("alpha", "alpha-main", events.SourceTEG, nil)
	late, err := events.New(events.TypeAccountOpened, "late-event", "x", e.clock.Now())
	require.NoError(t, err)
	require.NoError(t, w.Write(e.ctx, open, late))

	cp, err := e.store.WriteCheckpoint(e.ctx)
	require.NoError(t, err)
	require.Equal(t, int64(queued), cp.CoversSeq, "every committed event is numbered, and nothing else")
	require.Equal(t, e.summary(), cp.Summary)
	require.Contains(t, cp.Sums, recon.Sum{Bucket: "liquid", Class: recon.ClassIssuance, Units: -1_000_000 * avt})

	key := events.BalanceCheckpointKey("alpha-main", cp.CoversSeq)
	require.Zero(t, e.outboxSeq(key), "the relay numbers the checkpoint itself")
	relay := db.NewOutboxStore(e.pool)
	rows, err := relay.Sequence(e.ctx, 100, e.clock.Now())
	require.NoError(t, err)
	require.Len(t, rows, 1)
	require.Equal(t, cp.CoversSeq+1, e.outboxSeq(key), "numbered after what it covers")
	var raw []byte
	require.NoError(t, e.pool.QueryRow(e.ctx, `SELECT envelope::text FROM outbox WHERE idempotency_key = $1`, key).Scan(&raw))
	var env events.Envelope
	require.NoError(t, json.Unmarshal(raw, &env))
	require.Equal(t, events.TypeBalanceCheckpoint, env.Type)
	require.Empty(t, env.Postings)
	var payload events.BalanceCheckpoint
	require.NoError(t, json.Unmarshal(env.Payload, &payload))
	require.Equal(t, cp.CoversSeq, payload.CoversSeq)
	require.Equal(t, cp.Summary, payload.Summary)
	last, found, err := e.store.LastCheckpoint(e.ctx)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, cp.CoversSeq, last.CoversSeq)
	require.Equal(t, cp.Digest, last.Digest)

	// The open transaction commits; the relay numbers its event after the
	// checkpoint's.
	require.NoError(t, open.Commit(e.ctx))
	rows, err = relay.Sequence(e.ctx, 100, e.clock.Now())
	require.NoError(t, err)
	require.Len(t, rows, 1)
	require.Equal(t, cp.CoversSeq+2, rows[0].Seq)

	// A later checkpoint covers the earlier one and the late event; the
	// balances moved, so its digest differs.
	_, err = e.store.Transfer(e.ctx, ledgerstore.TransferRequest{From: a, To: dev, AmountUnits: avt, IdempotencyKey: "t3"})
	require.NoError(t, err)
	cp2, err := e.store.WriteCheckpoint(e.ctx)
	require.NoError(t, err)
	require.Equal(t, cp.CoversSeq+2+2, cp2.CoversSeq, "checkpoint, late event, transfer and its fee")
	unpublished, err := relay.Unpublished(e.ctx, 100)
	require.NoError(t, err)
	require.Equal(t, cp2.CoversSeq, unpublished[len(unpublished)-1].Seq, "what the cut numbered is there for the relay to publish")
	require.NotEqual(t, cp.Digest, cp2.Digest)
	require.Equal(t, e.summary(), cp2.Summary)
	e.checkInvariants()
}

// A checkpoint never waits for the relay: a queued row the relay is
// numbering makes it retry, and give up (Unavailable) if that lasts.
func TestWriteCheckpointRelayBusy(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	relay, err := e.pool.Begin(e.ctx)
	require.NoError(t, err)
	defer relay.Rollback(context.Background()) //nolint:errcheck
	_, err = relay.Exec(e.ctx, `SELECT id FROM outbox_queue FOR UPDATE`)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
	defer cancel()
	_, err = e.store.WriteCheckpoint(ctx)
	require.Equal(t, apperr.Unavailable, apperr.CodeOf(err), "%v", err)
	require.Zero(t, e.count(`SELECT count(*) FROM balance_checkpoints`))
	require.NoError(t, relay.Rollback(e.ctx))
	_, err = e.store.WriteCheckpoint(e.ctx)
	require.NoError(t, err)
}
