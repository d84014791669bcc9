// Package events defines the event envelope every component writes to its
// outbox and the EventStore ingests (SPEC §5), the event type names, and
// the envelope's fast wire codec: Encoder (the ledger's group commit) and
// Decoder (ingest), each byte-for-byte faithful to encoding/json.
// Pure Go: no I/O.
package events

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// SchemaVersion is the envelope version written by this build.
const SchemaVersion = 1

// Sources: which component authored an event. The emission policy decides
// which source may author which type.
const (
	SourceTEG        = "teg"
	SourceRegistry   = "registry"
	SourceEventStore = "eventstore"
	SourceWorker     = "worker"
)

// Limits on envelope fields; the outbox table enforces the same.
const (
	MaxKeyLen      = 200
	MaxTypeLen     = 100
	MaxSubjectLen  = 200
	MaxPostings    = 64
	MaxPayloadSize = 64 << 10
)

// Posting is one leg of a journal entry as the event reports it. Deltas of an
// event's postings sum to zero within each currency; system accounts
// (issuance) balance mints and burns.
type Posting struct {
	Account string `json:"account"`
	Bucket  string `json:"bucket"`
	Delta   int64  `json:"delta"`
}

// Envelope is the immutable record of one fact.
type Envelope struct {
	EventID        uuid.UUID       `json:"event_id"`
	IdempotencyKey string          `json:"idempotency_key"`
	Type           string          `json:"type"`
	Frame          string          `json:"frame"`
	Registry       string          `json:"registry"`
	Source         string          `json:"source"`
	SourceSeq      int64           `json:"source_seq,omitempty"` // assigned by the outbox relay
	OccurredAt     time.Time       `json:"occurred_at"`
	Subject        string          `json:"subject"`
	Postings       []Posting       `json:"postings,omitempty"`
	Payload        json.RawMessage `json:"payload,omitempty"`
	SchemaVersion  int             `json:"schema_version"`
}

// New returns an envelope with a fresh UUIDv7 event ID (time-ordered, so
// event IDs index well) and the current schema version. The idempotency key
// must come from business identity (workflow ID + step, transfer ID…), never
// from a random value.
func New(typ, idempotencyKey, subject string, occurredAt time.Time) (Envelope, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return Envelope{}, fmt.Errorf("event id: %w", err)
	}
	return Envelope{
		EventID:        id,
		IdempotencyKey: idempotencyKey,
		Type:           typ,
		Subject:        subject,
		OccurredAt:     occurredAt.UTC(),
		SchemaVersion:  SchemaVersion,
	}, nil
}

// Validate checks the envelope's structural invariants.
func (e Envelope) Validate() error {
	switch {
	case e.EventID == uuid.Nil:
		return fmt.Errorf("event: missing event_id")
	case e.IdempotencyKey == "" || len(e.IdempotencyKey) > MaxKeyLen:
		return fmt.Errorf("event %s: idempotency_key must be 1..%d bytes", e.Type, MaxKeyLen)
	case e.Type == "" || len(e.Type) > MaxTypeLen:
		return fmt.Errorf("event: type must be 1..%d bytes", MaxTypeLen)
	case len(e.Subject) > MaxSubjectLen:
		return fmt.Errorf("event %s: subject longer than %d bytes", e.Type, MaxSubjectLen)
	case e.Frame == "" || e.Registry == "" || e.Source == "":
		return fmt.Errorf("event %s: frame, registry and source are required", e.Type)
	case e.OccurredAt.IsZero():
		return fmt.Errorf("event %s: missing occurred_at", e.Type)
	case len(e.Postings) > MaxPostings:
		return fmt.Errorf("event %s: more than %d postings", e.Type, MaxPostings)
	case len(e.Payload) > MaxPayloadSize:
		return fmt.Errorf("event %s: payload larger than %d bytes", e.Type, MaxPayloadSize)
	}
	return nil
}
