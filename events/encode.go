package events

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// Encoder writes envelopes on a fast path, the counterpart of Decoder: the
// bytes it appends are exactly those encoding/json.Marshal writes for the
// same Envelope (field order, escaping and omitted empty fields included),
// so a consumer cannot tell which path wrote an event. It exists for the
// ledger's group commit, which encodes thousands of envelopes per
// transaction: reflection there cost more than the rest of the encoding,
// and building each payload as a struct and then a RawMessage allocated
// twice per event.
//
// All envelopes of one Encoder share frame, registry, source and
// occurred_at (one batch, one instant), encoded once by Reset. An envelope
// is written in order: Begin, then any Posting calls, then any Payload*
// calls (the payload is a flat JSON object, its fields in call order, as
// encoding/json writes a struct's; an envelope without payload fields has
// no payload), then End. source_seq is never written (the relay assigns
// it). Like strconv's Append functions, each call appends to dst and
// returns the extended slice; the Encoder keeps only the envelope's
// progress. A misuse or a limit exceeded is reported by End, which then
// refuses the whole envelope.
//
// An Encoder is not safe for concurrent use. FuzzRoundTrip checks encode
// → Decoder → equal, and the bytes against encoding/json.
type Encoder struct {
	stamp    []byte // `,"frame":…,"registry":…,"source":…,"occurred_at":"…","subject":`
	state    encState
	payload  int   // offset in dst of the open payload's '{'
	postings int   // postings of the open envelope
	err      error // first misuse or limit in the open envelope
}

type encState uint8

const (
	encIdle     encState = iota // between envelopes
	encHead                     // after Begin
	encPostings                 // inside "postings":[
	encPayload                  // inside "payload":{
)

// Reset prepares the Encoder for a batch of envelopes that all carry
// frame, registry, source and occurredAt (written in UTC, as events.New
// stores it).
func (e *Encoder) Reset(frame, registry, source string, occurredAt time.Time) {
	s := append(e.stamp[:0], `,"frame":`...)
	s = appendString(s, frame)
	s = append(s, `,"registry":`...)
	s = appendString(s, registry)
	s = append(s, `,"source":`...)
	s = appendString(s, source)
	s = append(s, `,"occurred_at":"`...)
	s = occurredAt.UTC().AppendFormat(s, time.RFC3339Nano)
	s = append(s, `","subject":`...)
	*e = Encoder{stamp: s}
}

// fail records the envelope's first error.
func (e *Encoder) fail(format string, args ...any) {
	if e.err == nil {
		e.err = fmt.Errorf(format, args...)
	}
}

// Begin opens an envelope with its event ID (drawn by the caller, by
// events.New's rule: a UUIDv7), idempotency key, type and subject; End
// refuses it if they break the limits Envelope.Validate applies.
func (e *Encoder) Begin(dst []byte, id uuid.UUID, key, typ, subject string) []byte {
	if e.state != encIdle {
		e.fail("event %s (%s): the previous envelope was not ended", typ, key)
	}
	switch {
	case id == uuid.Nil:
		e.fail("event %s (%s): missing event_id", typ, key)
	case key == "" || len(key) > MaxKeyLen:
		e.fail("event %s: idempotency_key must be 1..%d bytes", typ, MaxKeyLen)
	case typ == "" || len(typ) > MaxTypeLen:
		e.fail("event: type must be 1..%d bytes", MaxTypeLen)
	case len(subject) > MaxSubjectLen:
		e.fail("event %s (%s): subject longer than %d bytes", typ, key, MaxSubjectLen)
	}
	dst = append(dst, `{"event_id":"`...)
	dst = appendUUID(dst, id)
	dst = append(dst, `","idempotency_key":`...)
	dst = appendString(dst, key)
	dst = append(dst, `,"type":`...)
	dst = appendString(dst, typ)
	dst = append(dst, e.stamp...)
	e.state, e.postings = encHead, 0
	return appendString(dst, subject)
}

// Posting appends one posting to the open envelope (before its payload).
func (e *Encoder) Posting(dst []byte, account, bucket string, delta int64) []byte {
	switch e.state {
	case encHead:
		dst = append(dst, `,"postings":[{"account":`...)
		e.state = encPostings
	case encPostings:
		dst = append(dst, `,{"account":`...)
	default:
		e.fail("event: a posting outside an envelope or after its payload")
		return dst
	}
	if e.postings++; e.postings > MaxPostings {
		e.fail("event: more than %d postings", MaxPostings)
	}
	dst = appendString(dst, account)
	dst = append(dst, `,"bucket":`...)
	dst = appendString(dst, bucket)
	dst = append(dst, `,"delta":`...)
	dst = strconv.AppendInt(dst, delta, 10)
	return append(dst, '}')
}

// field opens payload field key.
func (e *Encoder) field(dst []byte, key string) []byte {
	switch e.state {
	case encPayload:
		dst = append(dst, ',', '"')
	case encPostings:
		dst = append(dst, ']')
		fallthrough
	case encHead:
		dst = append(dst, `,"payload":{"`...)
		e.payload = len(dst) - 2
		e.state = encPayload
	default:
		e.fail("event: a payload field outside an envelope")
	}
	dst = append(dst, key...)
	return append(dst, '"', ':')
}

// PayloadString appends payload field key with string value v. key must
// be a plain JSON name (letters, digits, '_'), as in a struct tag.
func (e *Encoder) PayloadString(dst []byte, key, v string) []byte {
	return appendString(e.field(dst, key), v)
}

// PayloadInt appends payload field key with integer value v.
func (e *Encoder) PayloadInt(dst []byte, key string, v int64) []byte {
	return strconv.AppendInt(e.field(dst, key), v, 10)
}

// PayloadUUID appends payload field key with id in canonical form, as
// uuid.UUID marshals.
func (e *Encoder) PayloadUUID(dst []byte, key string, id uuid.UUID) []byte {
	dst = append(e.field(dst, key), '"')
	dst = appendUUID(dst, id)
	return append(dst, '"')
}

// End closes the open envelope. It reports the first misuse or limit
// (payload larger than MaxPayloadSize included) met since Begin; the
// envelope's bytes in dst are then not to be used.
func (e *Encoder) End(dst []byte) ([]byte, error) {
	switch e.state {
	case encIdle:
		e.fail("event: End without Begin")
	case encPostings:
		dst = append(dst, ']')
	case encPayload:
		dst = append(dst, '}')
		if len(dst)-e.payload > MaxPayloadSize {
			e.fail("event: payload larger than %d bytes", MaxPayloadSize)
		}
	}
	dst = append(dst, `,"schema_version":`...)
	dst = strconv.AppendInt(dst, SchemaVersion, 10)
	dst = append(dst, '}')
	err := e.err
	e.state, e.err = encIdle, nil
	return dst, err
}

// appendUUID writes id in its canonical 36-character form.
func appendUUID(dst []byte, id uuid.UUID) []byte {
	const hexDigits = "0123456789abcdef"
	var t [36]byte
	j := 0
	for i, b := range id {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			t[j] = '-'
			j++
		}
		t[j], t[j+1] = hexDigits[b>>4], hexDigits[b&0x0f]
		j += 2
	}
	return append(dst, t[:]...)
}

// jsonPlain marks the bytes encoding/json copies into a string unchanged:
// printable ASCII other than the quote, the backslash and the HTML
// characters it escapes (<, >, &).
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendString appends s as a JSON string exactly as encoding/json writes
// it (HTML-safe escaping included): plain printable ASCII is copied
// directly, anything else goes through encoding/json.
func appendString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if !jsonPlain[s[i]] {
			raw, _ := json.Marshal(s) // a string always encodes
			return append(dst, raw...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}
