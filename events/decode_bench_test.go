package events

import (
	"encoding/json"
	"testing"
	"time"

	gojson "github.com/goccy/go-json"
	"github.com/google/uuid"
)

func benchEnvelope(b *testing.B) []byte {
	env := Envelope{
		EventID: uuid.Must(uuid.NewV7()), IdempotencyKey: "xfer-0192f3a4-5b6c-7d8e-9f00-112233445566", Type: "TokensTransferred",
		Frame: "alpha", Registry: "alpha-main", Source: SourceTEG, SourceSeq: 123456,
		OccurredAt: time.Now().UTC(), Subject: "did:theprotocol:00001234",
		Postings: []Posting{{Account: "did:theprotocol:00001234", Bucket: "liquid", Delta: -99500}, {Account: "did:theprotocol:00005678", Bucket: "liquid", Delta: 99500}},
		Payload:  json.RawMessage(`{"transfer_id":"0192f3a4-5b6c-7d8e-9f00-112233445566","from":"did:theprotocol:00001234","to":"did:theprotocol:00005678","amount_units":100000,"fee_units":500,"net_units":99500,"fee_bps":50}`), SchemaVersion: 1,
	}
	raw, err := json.Marshal(env)
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

func BenchmarkDecoder(b *testing.B) {
	raw := benchEnvelope(b)
	d := NewDecoder()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		var env Envelope
		if !d.Decode(raw, &env) {
			b.Fatal("slow path")
		}
	}
}

func BenchmarkStdlibDecode(b *testing.B) {
	raw := benchEnvelope(b)
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		var env Envelope
		if err := json.Unmarshal(raw, &env); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGoccyDecode(b *testing.B) {
	raw := benchEnvelope(b)
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		var env Envelope
		if err := gojson.Unmarshal(raw, &env); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncoder writes benchEnvelope's event with the Encoder, as the
// ledger's group commit does (the counterpart of BenchmarkDecoder).
func BenchmarkEncoder(b *testing.B) {
	raw := benchEnvelope(b)
	var env Envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		b.Fatal(err)
	}
	var p struct {
		TransferID  uuid.UUID `json:"transfer_id"`
		From, To    string
		AmountUnits int64 `json:"amount_units"`
	}
	if err := json.Unmarshal(env.Payload, &p); err != nil {
		b.Fatal(err)
	}
	var e Encoder
	e.Reset(env.Frame, env.Registry, env.Source, env.OccurredAt)
	buf := make([]byte, 0, 1024)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		buf = e.Begin(buf[:0], env.EventID, env.IdempotencyKey, env.Type, env.Subject)
		for _, ps := range env.Postings {
			buf = e.Posting(buf, ps.Account, ps.Bucket, ps.Delta)
		}
		buf = e.PayloadUUID(buf, "transfer_id", p.TransferID)
		buf = e.PayloadString(buf, "from", p.From)
		buf = e.PayloadString(buf, "to", p.To)
		buf = e.PayloadInt(buf, "amount_units", p.AmountUnits)
		var err error
		if buf, err = e.End(buf); err != nil {
			b.Fatal(err)
		}
	}
}
