package ledgerstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

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
