package events

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// fuzzPayload is the payload FuzzRoundTrip writes field by field: its JSON
// (through encoding/json) is what the Encoder must produce.
type fuzzPayload struct {
	TransferID  uuid.UUID `json:"transfer_id"`
	AmountUnits int64     `json:"amount_units"`
	Memo        string    `json:"memo,omitempty"`
}

// FuzzRoundTrip encodes an envelope with the Encoder, then checks that the
// bytes are encoding/json's, that decoding them (Decoder, or encoding/json
// where the fast path declines, as ingest does) gives the envelope back,
// and that the fast path declines only strings that needed escaping.
// Seeds: the calls below and testdata/fuzz/FuzzRoundTrip.
func FuzzRoundTrip(f *testing.F) {
	f.Add("xfer-0192f3a4-5b6c-7d8e-9f00-112233445566", "TokensTransferred", "did:theprotocol:a", "alpha", "did:theprotocol:a", "", int64(99_500), int64(1_795_000_000_123_456_789), true, true)
	f.Add("fee-1", "TransactionFeeCollected", "dev:b", "alpha", "fee_collector", "invoice <42> & \"co\"", int64(-500), int64(0), true, true)
	f.Add("k", "HoldPlaced", "", "β-frame", "", "tab\t é ☃ \u2028", int64(0), int64(-1), false, true)
	f.Add("mint-1", "TokensIssued", "did:theprotocol:x", "alpha", "issuance", "", int64(-1<<63), int64(1<<62), true, false)
	f.Add("", "", "", "", "", "", int64(0), int64(0), false, false)                                     // refused: no key, no type
	f.Add(strings.Repeat("k", MaxKeyLen+1), "T", "s", "f", "a", "\xff", int64(1), int64(1), true, true) // refused: key too long
	d := NewDecoder()
	f.Fuzz(func(t *testing.T, key, typ, subject, frame, account, memo string, delta, nsec int64, withPostings, withPayload bool) {
		want := Envelope{
			EventID: uuid.MustParse("01900000-0000-7000-8000-000000000001"), IdempotencyKey: key, Type: typ,
			Frame: frame, Registry: "alpha-main", Source: SourceTEG, OccurredAt: time.Unix(0, nsec).UTC(),
			Subject: subject, SchemaVersion: SchemaVersion,
		}
		var enc Encoder
		enc.Reset(want.Frame, want.Registry, want.Source, want.OccurredAt.In(time.FixedZone("x", 3600)))
		raw := enc.Begin([]byte("prefix"), want.EventID, key, typ, subject)
		if withPostings {
			want.Postings = []Posting{{Account: account, Bucket: "liquid", Delta: -delta}, {Account: "fee_collector", Bucket: "liquid", Delta: delta}}
			for _, p := range want.Postings {
				raw = enc.Posting(raw, p.Account, p.Bucket, p.Delta)
			}
		}
		if withPayload {
			p := fuzzPayload{TransferID: want.EventID, AmountUnits: delta, Memo: memo}
			want.Payload, _ = json.Marshal(p)
			raw = enc.PayloadUUID(raw, "transfer_id", p.TransferID)
			raw = enc.PayloadInt(raw, "amount_units", p.AmountUnits)
			if p.Memo != "" {
				raw = enc.PayloadString(raw, "memo", p.Memo)
			}
		}
		raw, err := enc.End(raw)
		refused := key == "" || len(key) > MaxKeyLen || typ == "" || len(typ) > MaxTypeLen || len(subject) > MaxSubjectLen
		if refused != (err != nil) {
			t.Fatalf("End: %v; want refused=%v", err, refused)
		}
		if refused {
			return
		}
		if string(raw[:6]) != "prefix" {
			t.Fatalf("Begin overwrote the buffer's head: %q", raw)
		}
		raw = raw[6:]
		std, err := json.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		if string(raw) != string(std) {
			t.Fatalf("encoder and encoding/json differ:\nenc: %s\nstd: %s", raw, std)
		}

		var got Envelope
		fast := d.Decode(raw, &got)
		if !fast {
			got = Envelope{}
			if err := json.Unmarshal(raw, &got); err != nil {
				t.Fatalf("encoding/json refuses the encoder's output (%v): %s", err, raw)
			}
		}
		envStrings := []string{key, typ, subject, frame, account}
		if allValidUTF8(append(envStrings, memo)) {
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("round trip differs:\n got %#v\nwant %#v", got, want)
			}
			// The fast path reads what the encoder writes, unless an
			// envelope string needed an escape.
			if joined := strings.Join(envStrings, ""); !fast && !strings.ContainsAny(joined, "\"\\<>&\u2028\u2029") && !hasControl(joined) {
				t.Fatalf("the fast path declined plain output: %s", raw)
			}
		} else {
			// Invalid UTF-8 becomes U+FFFD on any JSON path: the envelope
			// comes back as encoding/json's own round trip gives it.
			var back Envelope
			if err := json.Unmarshal(std, &back); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, back) {
				t.Fatalf("round trip differs from encoding/json's:\n got %#v\nwant %#v", got, back)
			}
		}
	})
}

// allValidUTF8 checks each string on its own: two invalid halves may
// join into a valid character.
func allValidUTF8(ss []string) bool {
	for _, s := range ss {
		if !utf8.ValidString(s) {
			return false
		}
	}
	return true
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 {
			return true
		}
	}
	return false
}

// The Encoder refuses, at End, envelopes the outbox would refuse.
func TestEncoderRefusesMisuse(t *testing.T) {
	t.Parallel()
	id := uuid.MustParse("01900000-0000-7000-8000-000000000001")
	var e Encoder
	e.Reset("alpha", "alpha-main", SourceTEG, time.Unix(0, 0))
	for name, write := range map[string]func([]byte) []byte{
		"missing id": func(b []byte) []byte { return e.Begin(b, uuid.Nil, "k", "T", "s") },
		"subject too long": func(b []byte) []byte {
			return e.Begin(b, id, "k", "T", strings.Repeat("s", MaxSubjectLen+1))
		},
		"posting after payload": func(b []byte) []byte {
			b = e.PayloadInt(e.Begin(b, id, "k", "T", "s"), "n", 1)
			return e.Posting(b, "a", "liquid", 1)
		},
		"too many postings": func(b []byte) []byte {
			b = e.Begin(b, id, "k", "T", "s")
			for range MaxPostings + 1 {
				b = e.Posting(b, "a", "liquid", 1)
			}
			return b
		},
		"payload too large": func(b []byte) []byte {
			return e.PayloadString(e.Begin(b, id, "k", "T", "s"), "memo", strings.Repeat("m", MaxPayloadSize))
		},
		"begin twice":       func(b []byte) []byte { return e.Begin(e.Begin(b, id, "k", "T", "s"), id, "k", "T", "s") },
		"end without begin": func(b []byte) []byte { return b },
	} {
		if _, err := e.End(write(nil)); err == nil {
			t.Errorf("%s: End accepted it", name)
		}
		// The Encoder is usable again after a refusal.
		b, err := e.End(e.Begin(nil, id, "k", "T", "s"))
		if err != nil || !json.Valid(b) {
			t.Fatalf("after %s: %v %s", name, err, b)
		}
	}
}
