package ledgerstore

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/theprotocol-dev/theprotocol/events"
	"github.com/theprotocol-dev/theprotocol/ledger"
)

// Event types the TEG ledger writes to its outbox. Each event's idempotency
// key derives from business identity (shown next to each type), so the
// EventStore deduplicates replays.
const (
	EventTokensIssued            = "TokensIssued"            // mint-<operation id>
	EventTokensBurned            = "TokensBurned"            // burn-<operation id>
	EventTreasuryGrant           = "TreasuryGrant"           // grant-<operation id>
	EventTokensTransferred       = "TokensTransferred"       // xfer-<transfer id>
	EventTransactionFeeCollected = "TransactionFeeCollected" // fee-<transfer id>
	EventHoldPlaced              = "HoldPlaced"              // hold-placed-<hold id>
	EventHoldPosted              = "HoldPosted"              // hold-posted-<hold id>
	EventHoldVoided              = "HoldVoided"              // hold-voided-<hold id>
	EventHoldExpired             = "HoldExpired"             // hold-expired-<hold id>
)

// The postings of a transfer's journal entry (sender −amount, receiver
// +net, fee_collector +fee) are split across its two events so each event
// balances on its own and no leg is reported twice:
// TokensTransferred carries sender −net / receiver +net, and
// TransactionFeeCollected carries sender −fee / fee_collector +fee.

type transferPayload struct {
	TransferID  uuid.UUID  `json:"transfer_id"`
	From        string     `json:"from"`
	To          string     `json:"to"`
	AmountUnits int64      `json:"amount_units"`
	FeeUnits    int64      `json:"fee_units"`
	NetUnits    int64      `json:"net_units"`
	FeeBps      int64      `json:"fee_bps"`
	Memo        string     `json:"memo,omitempty"`
	HoldID      *uuid.UUID `json:"hold_id,omitempty"`
}

type feePayload struct {
	TransferID uuid.UUID `json:"transfer_id"`
	Payer      string    `json:"payer"`
	FeeUnits   int64     `json:"fee_units"`
	FeeBps     int64     `json:"fee_bps"`
}

type holdPayload struct {
	HoldID      uuid.UUID  `json:"hold_id"`
	From        string     `json:"from"`
	To          string     `json:"to"`
	AmountUnits int64      `json:"amount_units"`
	PostedUnits int64      `json:"posted_units,omitempty"`
	TransferID  *uuid.UUID `json:"transfer_id,omitempty"`
	ExpiresAt   time.Time  `json:"expires_at"`
}

type supplyPayload struct {
	OperationID uuid.UUID `json:"operation_id"`
	Account     string    `json:"account"`
	AmountUnits int64     `json:"amount_units"`
	Reason      string    `json:"reason"`
	Actor       string    `json:"actor"`
}

func newEvent(typ, key, subject string, at time.Time, postings []ledger.Posting, payload any) (events.Envelope, error) {
	env, err := events.New(typ, key, subject, at)
	if err != nil {
		return events.Envelope{}, err
	}
	for _, p := range postings {
		env.Postings = append(env.Postings, events.Posting{Account: p.Account, Bucket: p.Bucket, Delta: p.Delta})
	}
	raw, err := json.Marshal(payload)
	if err != nil {
		return events.Envelope{}, fmt.Errorf("encode %s payload: %w", typ, err)
	}
	env.Payload = raw
	return env, nil
}

// transferEvents returns TokensTransferred and, when a fee was charged,
// TransactionFeeCollected for t.
func transferEvents(t Transfer) ([]events.Envelope, error) {
	p := transferPayload{
		TransferID: t.ID, From: t.From, To: t.To, AmountUnits: t.AmountUnits, FeeUnits: t.FeeUnits,
		NetUnits: t.NetUnits, FeeBps: t.FeeBps, Memo: t.Memo, HoldID: t.HoldID,
	}
	xfer, err := newEvent(EventTokensTransferred, "xfer-"+t.ID.String(), t.From, t.CreatedAt, []ledger.Posting{
		{Account: t.From, Bucket: ledger.BucketLiquid, Delta: -t.NetUnits},
		{Account: t.To, Bucket: ledger.BucketLiquid, Delta: t.NetUnits},
	}, p)
	if err != nil {
		return nil, err
	}
	if t.FeeUnits == 0 {
		return []events.Envelope{xfer}, nil
	}
	fee, err := newEvent(EventTransactionFeeCollected, "fee-"+t.ID.String(), t.From, t.CreatedAt, []ledger.Posting{
		{Account: t.From, Bucket: ledger.BucketLiquid, Delta: -t.FeeUnits},
		{Account: ledger.AccountFeeCollector, Bucket: ledger.BucketLiquid, Delta: t.FeeUnits},
	}, feePayload{TransferID: t.ID, Payer: t.From, FeeUnits: t.FeeUnits, FeeBps: t.FeeBps})
	if err != nil {
		return nil, err
	}
	return []events.Envelope{xfer, fee}, nil
}

// writeEvents appends envs to the outbox in tx (one bulk INSERT for the
// group-commit path; see db.OutboxWriter.WriteBatch).
func (s *Store) writeEvents(ctx context.Context, tx pgx.Tx, envs []events.Envelope) error {
	return s.outbox.WriteBatch(ctx, tx, envs)
}

// uuidBytes copies id into slot i of buf (16 bytes per slot) and returns
// that slot: bulk statements take ids as bytea[] (see queries/teg).
func uuidBytes(buf []byte, i int, id uuid.UUID) []byte {
	b := buf[16*i : 16*i+16 : 16*i+16]
	copy(b, id[:])
	return b
}

// transferEventRows is the outbox side of a batch of transfers, encoded
// without reflection: the same envelopes (fields, order and values) that
// transferEvents + db.OutboxWriter would produce.
type transferEventRows struct {
	ids      []uuid.UUID
	keys     []string
	types    []string
	subjects []string
	bodies   [][]byte // slices of buf
	buf      *[]byte  // from envelopeBufs; release returns it
}

// envelopeBufs recycles the buffer a batch's envelopes are encoded into
// (~1.6 KB per transfer): after the COPY has sent them nothing refers to
// it, and reusing it keeps the group committer's allocation rate (and with
// it the garbage collector's work) down.
var envelopeBufs = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// release returns the envelope buffer to the pool; r.bodies must no longer
// be used.
func (r *transferEventRows) release() {
	if r.buf == nil {
		return
	}
	if cap(*r.buf) <= 4<<20 { // do not keep an outsized buffer alive
		envelopeBufs.Put(r.buf)
	}
	r.buf, r.bodies = nil, nil
}

// encodeTransferEvents stamps, validates, checks the emission guard (once
// per type) and encodes the TokensTransferred / TransactionFeeCollected
// events of ts, all occurring at now, with events.Encoder: the same
// envelopes (fields, order and values) that transferEvents +
// db.OutboxWriter would produce, without reflection.
func (s *Store) encodeTransferEvents(ctx context.Context, tx pgx.Tx, ts []Transfer, now time.Time) (transferEventRows, error) {
	w := s.outbox
	if w.Frame == "" || w.Registry == "" || w.Source == "" {
		return transferEventRows{}, fmt.Errorf("outbox: event %s: frame, registry and source are required", EventTokensTransferred)
	}
	if w.Guard != nil {
		for _, typ := range []string{EventTokensTransferred, EventTransactionFeeCollected} {
			if err := w.Guard(ctx, tx, w.Source, typ); err != nil {
				return transferEventRows{}, err
			}
		}
	}
	n := 0
	for _, t := range ts {
		n++
		if t.FeeUnits != 0 {
			n++
		}
	}
	r := transferEventRows{ids: make([]uuid.UUID, 0, n), keys: make([]string, 0, n), types: make([]string, 0, n),
		subjects: make([]string, 0, n), bodies: make([][]byte, 0, n), buf: envelopeBufs.Get().(*[]byte)}
	// ~800 bytes per envelope with DID accounts; grown once if short.
	buf := (*r.buf)[:0]
	if need := n * 900; cap(buf) < need {
		buf = make([]byte, 0, need)
	}
	var enc events.Encoder
	enc.Reset(w.Frame, w.Registry, w.Source, now)
	ends := make([]int, 0, n)
	begin := func(typ, key, subject string) error {
		id, err := uuid.NewV7()
		if err != nil {
			return fmt.Errorf("event id: %w", err)
		}
		buf = enc.Begin(buf, id, key, typ, subject)
		r.ids = append(r.ids, id)
		r.keys = append(r.keys, key)
		r.types = append(r.types, typ)
		r.subjects = append(r.subjects, subject)
		return nil
	}
	end := func() (err error) {
		if buf, err = enc.End(buf); err != nil {
			return fmt.Errorf("outbox: %w", err)
		}
		ends = append(ends, len(buf))
		return nil
	}
	for _, t := range ts {
		tid := t.ID.String()
		// transferPayload's fields, in its order.
		if err := begin(EventTokensTransferred, "xfer-"+tid, t.From); err != nil {
			return transferEventRows{}, err
		}
		buf = enc.Posting(buf, t.From, ledger.BucketLiquid, -t.NetUnits)
		buf = enc.Posting(buf, t.To, ledger.BucketLiquid, t.NetUnits)
		buf = enc.PayloadUUID(buf, "transfer_id", t.ID)
		buf = enc.PayloadString(buf, "from", t.From)
		buf = enc.PayloadString(buf, "to", t.To)
		buf = enc.PayloadInt(buf, "amount_units", t.AmountUnits)
		buf = enc.PayloadInt(buf, "fee_units", t.FeeUnits)
		buf = enc.PayloadInt(buf, "net_units", t.NetUnits)
		buf = enc.PayloadInt(buf, "fee_bps", t.FeeBps)
		if t.Memo != "" {
			buf = enc.PayloadString(buf, "memo", t.Memo)
		}
		if t.HoldID != nil {
			buf = enc.PayloadUUID(buf, "hold_id", *t.HoldID)
		}
		if err := end(); err != nil {
			return transferEventRows{}, err
		}
		if t.FeeUnits == 0 {
			continue
		}
		// feePayload's fields, in its order.
		if err := begin(EventTransactionFeeCollected, "fee-"+tid, t.From); err != nil {
			return transferEventRows{}, err
		}
		buf = enc.Posting(buf, t.From, ledger.BucketLiquid, -t.FeeUnits)
		buf = enc.Posting(buf, ledger.AccountFeeCollector, ledger.BucketLiquid, t.FeeUnits)
		buf = enc.PayloadUUID(buf, "transfer_id", t.ID)
		buf = enc.PayloadString(buf, "payer", t.From)
		buf = enc.PayloadInt(buf, "fee_units", t.FeeUnits)
		buf = enc.PayloadInt(buf, "fee_bps", t.FeeBps)
		if err := end(); err != nil {
			return transferEventRows{}, err
		}
	}
	*r.buf = buf
	prev := 0
	for _, e := range ends {
		r.bodies = append(r.bodies, buf[prev:e:e])
		prev = e
	}
	return r, nil
}

// outboxColumns are the columns copyEvents fills: those of
// commondb.OutboxInsertBatch plus the id, drawn from the outbox's sequence
// and already queued for the relay by TransfersWrite.
var outboxColumns = []string{"id", "event_id", "idempotency_key", "event_type", "subject", "occurred_at", "envelope"}

// copyEvents appends the encoded events to the outbox with COPY under the
// given ids (ascending, so the events keep their order): Postgres writes a
// page's worth of rows per WAL record (instead of one per row), and no
// statement parameter holds every envelope at once.
func (s *Store) copyEvents(ctx context.Context, tx pgx.Tx, r transferEventRows, ids []int64, now time.Time) error {
	if len(ids) != len(r.ids) {
		return fmt.Errorf("outbox: %d ids for %d transfer events", len(ids), len(r.ids))
	}
	slices.Sort(ids)
	// pgx encodes each row before asking for the next, so one row slice
	// (and one boxed timestamp) serves every row.
	row := make([]any, len(outboxColumns))
	row[5] = now
	n, err := tx.CopyFrom(ctx, pgx.Identifier{"outbox"}, outboxColumns, pgx.CopyFromSlice(len(r.ids), func(i int) ([]any, error) {
		row[0], row[1], row[2], row[3], row[4], row[6] = ids[i], pgtype.UUID{Bytes: r.ids[i], Valid: true}, r.keys[i], r.types[i], r.subjects[i], r.bodies[i]
		return row, nil
	}))
	if err != nil {
		return fmt.Errorf("outbox: copy %d transfer events: %w", len(r.ids), err)
	}
	if n != int64(len(r.ids)) {
		return fmt.Errorf("outbox: copied %d of %d transfer events", n, len(r.ids))
	}
	return nil
}
