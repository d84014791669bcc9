package events

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"time"
	"unicode/utf8"
	"unsafe"
)

// Decoder decodes envelopes on a fast path written for the shape every
// component emits: an object with exactly the envelope's field names, no
// escapes in the envelope's own strings. Ingest decodes every event it
// receives, and a general-purpose JSON decoder spent about 3 µs per
// envelope, the largest share of the EventStore consumer's CPU.
//
// The fast path never guesses: anything it was not written for (another
// key spelling, which encoding/json would match case-insensitively; a
// duplicate key; an escape or invalid UTF-8 in an envelope string, which
// encoding/json would unescape or replace; a null; a number that is not a
// plain integer) makes Decode report false, and the caller decodes the
// record with encoding/json instead. When Decode reports true, the
// envelope equals what encoding/json.Unmarshal produces (a property test
// and a fuzz test check it).
//
// A Decoder interns the strings that repeat from event to event (type,
// frame, registry, source, bucket), so they are not allocated per event.
// It is not safe for concurrent use.
type Decoder struct {
	interned map[string]string
}

// maxInterned bounds a Decoder's string cache; values past it are simply
// allocated.
const maxInterned = 4096

// maxPayloadDepth bounds payload nesting on the fast path (encoding/json
// allows 10,000; deeper payloads take the slow path).
const maxPayloadDepth = 64

// NewDecoder returns a Decoder with an empty string cache.
func NewDecoder() *Decoder { return &Decoder{interned: map[string]string{}} }

// Decode decodes raw into env and reports whether the fast path could
// decide it. On false, env is in an unspecified state and the caller must
// decode raw with encoding/json (which also reports the error, if any).
func (d *Decoder) Decode(raw []byte, env *Envelope) bool {
	*env = Envelope{}
	if d.decodeLayout(raw, env) {
		return true
	}
	*env = Envelope{}
	s := scanner{b: raw}
	s.ws()
	var seen uint16
	ok := s.members(false, func(key []byte) bool {
		f := envelopeField(key)
		if f < 0 || seen&(1<<f) != 0 {
			return false // unknown, differently spelt or repeated key
		}
		seen |= 1 << f
		return d.field(&s, f, env)
	})
	return ok && s.end()
}

// decodeLayout decodes the exact bytes encoding/json writes for an
// Envelope (and so every component): its fields in declaration order,
// source_seq, postings and payload possibly omitted, no whitespace. Each
// key is then one comparison with the expected literal instead of a
// scanned string, a lookup and a call per member (measured ~1.3x faster
// than the general loop below on a ledger-shaped envelope). Anything else
// reports false and Decode takes the general loop, which accepts any key
// order and whitespace; values are read by the same functions either way.
func (d *Decoder) decodeLayout(raw []byte, env *Envelope) bool {
	s := scanner{b: raw}
	for _, f := range envelopeLayout {
		if !s.literal(f.key) {
			if f.optional {
				continue
			}
			return false
		}
		if !d.field(&s, f.field, env) {
			return false
		}
	}
	return s.literal("}") && s.i == len(s.b)
}

// envelopeLayout is Envelope's JSON as encoding/json writes it: each key
// with the punctuation before it.
var envelopeLayout = [...]struct {
	key      string
	field    int
	optional bool // omitempty
}{
	{`{"event_id":`, fEventID, false},
	{`,"idempotency_key":`, fIdempotencyKey, false},
	{`,"type":`, fType, false},
	{`,"frame":`, fFrame, false},
	{`,"registry":`, fRegistry, false},
	{`,"source":`, fSource, false},
	{`,"source_seq":`, fSourceSeq, true},
	{`,"occurred_at":`, fOccurredAt, false},
	{`,"subject":`, fSubject, false},
	{`,"postings":`, fPostings, true},
	{`,"payload":`, fPayload, true},
	{`,"schema_version":`, fSchemaVersion, false},
}

// members consumes an object, calling member for each key with the scanner
// at the key's value; member must consume the value or report false. With
// anyKeys, keys may hold escapes and member gets nil (payloads are only
// validated); otherwise keys must be plain strings.
func (s *scanner) members(anyKeys bool, member func(key []byte) bool) bool {
	return s.sequence('{', '}', func() bool {
		var key []byte
		if anyKeys {
			if !s.skipString() {
				return false
			}
		} else {
			var ok bool
			if key, ok = s.plainString(); !ok {
				return false
			}
		}
		s.ws()
		if !s.byte(':') {
			return false
		}
		s.ws()
		return member(key)
	})
}

// sequence consumes open, items separated by commas, and close (an object
// or an array), calling item at each item's start; item must consume it.
func (s *scanner) sequence(open, close byte, item func() bool) bool {
	if !s.byte(open) {
		return false
	}
	s.ws()
	if s.byte(close) {
		return true
	}
	for {
		s.ws()
		if !item() {
			return false
		}
		s.ws()
		switch s.next() {
		case ',':
			continue
		case close:
			return true
		default:
			return false
		}
	}
}

const (
	fEventID = iota
	fIdempotencyKey
	fType
	fFrame
	fRegistry
	fSource
	fSourceSeq
	fOccurredAt
	fSubject
	fPostings
	fPayload
	fSchemaVersion
)

func envelopeField(key []byte) int {
	switch string(key) {
	case "event_id":
		return fEventID
	case "idempotency_key":
		return fIdempotencyKey
	case "type":
		return fType
	case "frame":
		return fFrame
	case "registry":
		return fRegistry
	case "source":
		return fSource
	case "source_seq":
		return fSourceSeq
	case "occurred_at":
		return fOccurredAt
	case "subject":
		return fSubject
	case "postings":
		return fPostings
	case "payload":
		return fPayload
	case "schema_version":
		return fSchemaVersion
	}
	return -1
}

func (d *Decoder) field(s *scanner, f int, env *Envelope) bool {
	switch f {
	case fEventID:
		v, ok := s.plainString()
		// uuid.UUID is a TextUnmarshaler: encoding/json hands it the
		// string's contents, as here.
		return ok && env.EventID.UnmarshalText(v) == nil
	case fIdempotencyKey:
		return d.str(s, &env.IdempotencyKey, false)
	case fType:
		return d.str(s, &env.Type, true)
	case fFrame:
		return d.str(s, &env.Frame, true)
	case fRegistry:
		return d.str(s, &env.Registry, true)
	case fSource:
		return d.str(s, &env.Source, true)
	case fSourceSeq:
		v, ok := s.integer(64)
		env.SourceSeq = v
		return ok
	case fOccurredAt:
		start := s.i
		if _, ok := s.plainString(); !ok {
			return false
		}
		if t, ok := parseUTC(s.b[start+1 : s.i-1]); ok {
			env.OccurredAt = t
			return true
		}
		// time.Time's own UnmarshalJSON, on the quoted literal, as
		// encoding/json calls it.
		return env.OccurredAt.UnmarshalJSON(s.b[start:s.i]) == nil
	case fSubject:
		return d.str(s, &env.Subject, false)
	case fPostings:
		return d.postings(s, env)
	case fPayload:
		if s.peek() == 'n' {
			return false // null: encoding/json's RawMessage rules, not worth copying
		}
		start := s.i
		if !s.skipValue(0) {
			return false
		}
		env.Payload = append([]byte(nil), s.b[start:s.i]...)
		return true
	case fSchemaVersion:
		v, ok := s.integer(strconv.IntSize)
		env.SchemaVersion = int(v)
		return ok
	}
	return false
}

func (d *Decoder) postings(s *scanner, env *Envelope) bool {
	// encoding/json makes an empty array an empty, non-nil slice (and a
	// null, refused here, a nil one).
	env.Postings = make([]Posting, 0, 4)
	return s.sequence('[', ']', func() bool {
		var p Posting
		if !d.posting(s, &p) {
			return false
		}
		env.Postings = append(env.Postings, p)
		return true
	})
}

func (d *Decoder) posting(s *scanner, p *Posting) bool {
	// encoding/json's layout first (see decodeLayout).
	start := s.i
	if s.literal(`{"account":`) && d.str(s, &p.Account, false) &&
		s.literal(`,"bucket":`) && d.str(s, &p.Bucket, true) && s.literal(`,"delta":`) {
		if v, ok := s.integer(64); ok && s.literal("}") {
			p.Delta = v
			return true
		}
	}
	s.i, *p = start, Posting{}
	var seen uint8
	return s.members(false, func(key []byte) bool {
		var f uint8
		ok := false
		switch string(key) {
		case "account":
			f, ok = 1, d.str(s, &p.Account, false)
		case "bucket":
			f, ok = 2, d.str(s, &p.Bucket, true)
		case "delta":
			f = 4
			p.Delta, ok = s.integer(64)
		}
		if !ok || seen&f != 0 {
			return false // unknown or repeated key, or a bad value
		}
		seen |= f
		return true
	})
}

// str decodes a string without escapes into dst; intern reuses an earlier
// copy of the same value.
func (d *Decoder) str(s *scanner, dst *string, intern bool) bool {
	v, ok := s.plainString()
	if !ok {
		return false
	}
	if !intern {
		*dst = string(v)
		return true
	}
	if x, hit := d.interned[string(v)]; hit { // no allocation for the lookup
		*dst = x
		return true
	}
	*dst = string(v)
	if len(d.interned) < maxInterned {
		d.interned[*dst] = *dst
	}
	return true
}

// scanner walks a JSON text; every method reports false on anything the
// fast path does not handle.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) next() byte {
	if s.i < len(s.b) {
		s.i++
		return s.b[s.i-1]
	}
	return 0
}

func (s *scanner) byte(c byte) bool {
	if s.peek() == c {
		s.i++
		return true
	}
	return false
}

func (s *scanner) ws() {
	// The envelopes every component writes are compact: one comparison,
	// inlined, is the common case.
	if s.i < len(s.b) && s.b[s.i] > ' ' {
		return
	}
	s.wsSlow()
}

func (s *scanner) wsSlow() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// end reports whether only whitespace follows.
func (s *scanner) end() bool {
	s.ws()
	return s.i == len(s.b)
}

// plainString consumes a string with no escapes, no control characters
// and valid UTF-8, and returns its contents (aliasing the input). It looks
// at eight bytes per step (stringSpecial8), then finishes byte by byte from
// the first word holding a quote, backslash, control or non-ASCII byte.
func (s *scanner) plainString() ([]byte, bool) {
	if !s.byte('"') {
		return nil, false
	}
	b := s.b[s.i:]
	n := 0
	for n+8 <= len(b) && stringSpecial8(binary.LittleEndian.Uint64(b[n:])) == 0 {
		n += 8
	}
	for ; n < len(b); n++ {
		c := b[n]
		if !stringSpecial[c] {
			continue
		}
		if c != '"' {
			return s.plainStringSlow()
		}
		s.i += n + 1
		return b[:n], true
	}
	return nil, false
}

// plainStringSlow finishes a string whose bytes are not all printable
// ASCII: non-ASCII is fine if valid UTF-8; escapes and control characters
// are left to encoding/json.
func (s *scanner) plainStringSlow() ([]byte, bool) {
	b := s.b[s.i:]
	n := bytes.IndexByte(b, '"')
	if n < 0 {
		return nil, false
	}
	v := b[:n]
	if bytes.IndexByte(v, '\\') >= 0 || !noControl(v) || !utf8.Valid(v) {
		return nil, false // encoding/json would unescape, refuse or substitute U+FFFD
	}
	s.i += n + 1
	return v, true
}

// stringSpecial marks the bytes that end plainString's fast loop: the
// closing quote, a backslash, control characters and non-ASCII.
var stringSpecial = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c == '"' || c == '\\' || c < 0x20 || c >= 0x80
	}
	return t
}()

const (
	swarOnes = 0x0101010101010101
	swarHigh = 0x8080808080808080
)

// stringSpecial8 is non-zero if the eight bytes of w (little-endian) may
// hold a byte stringSpecial marks. The usual SWAR tests: a byte equal to c
// makes (x^c·ones) − ones borrow into its high bit, a byte below 0x20 makes
// w − 0x20·ones do so, and non-ASCII has its high bit set. A borrow can
// also flag a byte above a flagged one (never a word with none), which the
// byte loop after it sorts out.
func stringSpecial8(w uint64) uint64 {
	q := w ^ ('"' * swarOnes)
	e := w ^ ('\\' * swarOnes)
	return ((q-swarOnes)&^q | (e-swarOnes)&^e | (w - 0x20*swarOnes) | w) & swarHigh
}

// escapeOrControl8 is stringSpecial8 without the non-ASCII test: payload
// strings are kept verbatim, UTF-8 unchecked.
func escapeOrControl8(w uint64) uint64 {
	q := w ^ ('"' * swarOnes)
	e := w ^ ('\\' * swarOnes)
	return ((q-swarOnes)&^q | (e-swarOnes)&^e | (w-0x20*swarOnes)&^w) & swarHigh
}

// noControl reports whether b has no byte below 0x20, exactly.
func noControl(b []byte) bool {
	for len(b) >= 8 {
		w := binary.LittleEndian.Uint64(b)
		if (w-0x20*swarOnes)&^w&swarHigh != 0 {
			break // possibly a control byte (or a false alarm): look closer
		}
		b = b[8:]
	}
	for _, c := range b {
		if c < 0x20 {
			return false
		}
	}
	return true
}

// integer consumes a JSON integer (no fraction or exponent) that fits in
// bits bits.
func (s *scanner) integer(bits int) (int64, bool) {
	start := s.i
	neg := s.peek() == '-'
	if neg {
		s.i++
	}
	digits := s.i
	var u uint64
	if s.peek() == '0' {
		s.i++
	} else {
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			u = u*10 + uint64(s.b[s.i]-'0') // wraps past 19 digits: ParseInt decides those
			s.i++
		}
	}
	n := s.i - digits
	if n == 0 {
		return 0, false
	}
	switch s.peek() {
	case '.', 'e', 'E', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return 0, false // fraction, exponent, or a leading zero followed by digits
	}
	if n <= 18 && bits == 64 { // below 10^18: fits, no overflow possible
		if neg {
			return -int64(u), true
		}
		return int64(u), true
	}
	v, err := strconv.ParseInt(unsafe.String(&s.b[start], s.i-start), 10, bits)
	return v, err == nil
}

// skipValue consumes one complete, syntactically valid JSON value (as
// encoding/json's validity check would accept it; string contents are not
// checked for UTF-8, which RawMessage keeps verbatim either way).
func (s *scanner) skipValue(depth int) bool {
	if depth > maxPayloadDepth {
		return false
	}
	switch c := s.peek(); {
	case c == '{':
		return s.members(true, func([]byte) bool { return s.skipValue(depth + 1) })
	case c == '[':
		return s.sequence('[', ']', func() bool { return s.skipValue(depth + 1) })
	case c == '"':
		return s.skipString()
	case c == '-' || (c >= '0' && c <= '9'):
		return s.skipNumber()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	}
	return false
}

func (s *scanner) literal(lit string) bool {
	if len(s.b)-s.i >= len(lit) && string(s.b[s.i:s.i+len(lit)]) == lit {
		s.i += len(lit)
		return true
	}
	return false
}

// skipString consumes a string, escapes included (validated).
func (s *scanner) skipString() bool {
	if !s.byte('"') {
		return false
	}
	for {
		for s.i+8 <= len(s.b) && escapeOrControl8(binary.LittleEndian.Uint64(s.b[s.i:])) == 0 {
			s.i += 8
		}
		if s.i >= len(s.b) {
			return false
		}
		switch c := s.b[s.i]; {
		case c == '"':
			s.i++
			return true
		case c < 0x20:
			return false
		case c != '\\':
			s.i++
			continue
		}
		s.i++
		switch s.next() {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		case 'u':
			if len(s.b)-s.i < 4 {
				return false
			}
			for _, h := range s.b[s.i : s.i+4] {
				if !isHex(h) {
					return false
				}
			}
			s.i += 4
		default:
			return false
		}
	}
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// skipNumber consumes a number in JSON's grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) skipNumber() bool {
	s.byte('-')
	switch c := s.peek(); {
	case c == '0':
		s.i++
	case c >= '1' && c <= '9':
		s.digits()
	default:
		return false
	}
	if s.byte('.') && !s.digits() {
		return false
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		s.i++
		if c := s.peek(); c == '+' || c == '-' {
			s.i++
		}
		if !s.digits() {
			return false
		}
	}
	return true
}

// digits consumes [0-9]+ and reports whether there was at least one.
func (s *scanner) digits() bool {
	start := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}

// parseUTC parses the form every component writes, RFC 3339 in UTC with
// 0 to 9 fraction digits ("2006-01-02T15:04:05.999999999Z"), to the same
// time.Time as time.Time.UnmarshalJSON, in a fifth of the time. Anything
// else (offsets, out-of-range fields, leap seconds) reports false.
func parseUTC(b []byte) (time.Time, bool) {
	if len(b) < 20 || len(b) > 30 || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' || b[len(b)-1] != 'Z' {
		return time.Time{}, false
	}
	num := func(p []byte) (int, bool) {
		n := 0
		for _, c := range p {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	year, ok1 := num(b[0:4])
	month, ok2 := num(b[5:7])
	day, ok3 := num(b[8:10])
	hour, ok4 := num(b[11:13])
	minute, ok5 := num(b[14:16])
	sec, ok6 := num(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	if day > 28 && day > daysIn(time.Month(month), year) {
		return time.Time{}, false
	}
	nsec := 0
	if frac := b[19 : len(b)-1]; len(frac) > 0 {
		if frac[0] != '.' || len(frac) < 2 {
			return time.Time{}, false
		}
		n, ok := num(frac[1:])
		if !ok {
			return time.Time{}, false
		}
		for range 10 - len(frac) {
			n *= 10
		}
		nsec = n
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC), true
}

func daysIn(m time.Month, year int) int {
	if m == time.February {
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	}
	return 31 - int((m-1)%7%2)
}
