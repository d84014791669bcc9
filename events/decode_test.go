package events

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// checkAgainstStdlib asserts the Decoder's contract on raw: when the fast
// path decides, encoding/json accepts raw and produces the same envelope.
func checkAgainstStdlib(t testing.TB, d *Decoder, raw []byte) bool {
	t.Helper()
	var fast Envelope
	if !d.Decode(raw, &fast) {
		return false
	}
	var want Envelope
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatalf("fast path accepted what encoding/json refuses (%v):\n%s", err, raw)
	}
	if !reflect.DeepEqual(fast, want) {
		t.Fatalf("fast path differs from encoding/json:\n%s\nfast: %#v\nwant: %#v", raw, fast, want)
	}
	// The layout path on its own, when it decides, decides the same.
	var layout Envelope
	if d.decodeLayout(raw, &layout) && !reflect.DeepEqual(layout, want) {
		t.Fatalf("layout path differs from encoding/json:\n%s\nlayout: %#v\nwant: %#v", raw, layout, want)
	}
	return true
}

func TestDecoderCanonicalEnvelope(t *testing.T) {
	env := Envelope{
		EventID: uuid.MustParse("01900000-0000-7000-8000-000000000001"), IdempotencyKey: "xfer-1", Type: "TokensTransferred",
		Frame: "alpha", Registry: "alpha-main", Source: SourceTEG, SourceSeq: 42,
		OccurredAt: time.Date(2026, 11, 27, 3, 4, 5, 123456789, time.UTC), Subject: "did:theprotocol:a",
		Postings: []Posting{{Account: "did:theprotocol:a", Bucket: "liquid", Delta: -100}, {Account: "did:theprotocol:b", Bucket: "liquid", Delta: 100}},
		Payload:  json.RawMessage(`{"transfer_id":"x","amount_units":100,"nested":[1,2.5e3,true,null,"\u00e9\n"]}`), SchemaVersion: 1,
	}
	raw, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	d := NewDecoder()
	if !checkAgainstStdlib(t, d, raw) {
		t.Fatalf("fast path refused a canonical envelope:\n%s", raw)
	}
	var got Envelope
	if !d.decodeLayout(raw, &got) {
		t.Fatalf("layout path refused encoding/json's own output:\n%s", raw)
	}
	if got.Type != env.Type || got.SourceSeq != 42 || got.Postings[1].Delta != 100 || got.EventID != env.EventID {
		t.Fatalf("decoded %#v", got)
	}
}

// TestDecoderFallsBack lists inputs the fast path must leave to
// encoding/json, because decoding them needs rules it does not implement
// (or they are invalid).
func TestDecoderFallsBack(t *testing.T) {
	base := `{"event_id":"01900000-0000-7000-8000-000000000001","idempotency_key":"k","type":"T","frame":"f","registry":"r","source":"teg","occurred_at":"2026-11-27T03:04:05Z","subject":"s","postings":[{"account":"a","bucket":"liquid","delta":-1},{"account":"b","bucket":"liquid","delta":1}],"schema_version":1}`
	d := NewDecoder()
	if !checkAgainstStdlib(t, d, []byte(base)) {
		t.Fatal("base case must take the fast path")
	}
	cases := map[string]string{
		"key spelt differently":   strings.Replace(base, `"type"`, `"Type"`, 1),
		"unknown key":             strings.Replace(base, `"subject"`, `"subjekt"`, 1),
		"duplicate key":           strings.Replace(base, `"frame":"f"`, `"frame":"f","frame":"g"`, 1),
		"escape in a string":      strings.Replace(base, `"k"`, `"k\u0041"`, 1),
		"invalid UTF-8":           strings.Replace(base, `"k"`, "\"k\xff\"", 1),
		"null payload":            strings.Replace(base, `"schema_version"`, `"payload":null,"schema_version"`, 1),
		"null postings":           strings.Replace(base, `"postings":[`, `"postings":null,"x":[`, 1),
		"float delta":             strings.Replace(base, `"delta":1}`, `"delta":1.0}`, 1),
		"exponent delta":          strings.Replace(base, `"delta":1}`, `"delta":1e2}`, 1),
		"leading zero":            strings.Replace(base, `"delta":1}`, `"delta":01}`, 1),
		"overflowing delta":       strings.Replace(base, `"delta":1}`, `"delta":9223372036854775808}`, 1),
		"trailing garbage":        base + `x`,
		"trailing comma":          strings.Replace(base, `,"schema_version":1}`, `,"schema_version":1,}`, 1),
		"bad uuid":                strings.Replace(base, `01900000-0000`, `0190000g-0000`, 1),
		"bad time":                strings.Replace(base, `2026-11-27T03`, `2026-13-27T03`, 1),
		"string for a number":     strings.Replace(base, `"schema_version":1`, `"schema_version":"1"`, 1),
		"invalid payload":         strings.Replace(base, `"schema_version"`, `"payload":{"a":tru},"schema_version"`, 1),
		"bad escape in payload":   strings.Replace(base, `"schema_version"`, `"payload":{"a":"\x"},"schema_version"`, 1),
		"control char in payload": strings.Replace(base, `"schema_version"`, "\"payload\":{\"a\":\"\x01\"},\"schema_version\"", 1),
		"not an object":           `[1]`,
		"top-level null":          `null`,
		"unterminated":            base[:len(base)-1],
		"unknown posting key":     strings.Replace(base, `"bucket":"liquid","delta":1}`, `"bucket":"liquid","delta":1,"x":2}`, 1),
	}
	for name, raw := range cases {
		t.Run(name, func(t *testing.T) {
			if checkAgainstStdlib(t, d, []byte(raw)) {
				t.Fatalf("fast path decided an input it must leave to encoding/json:\n%s", raw)
			}
		})
	}
}

// TestDecoderMatchesStdlib: random envelopes, some mangled, both as
// encoding/json writes them and with random whitespace and key order.
func TestDecoderMatchesStdlib(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	d := NewDecoder()
	fast := 0
	const n = 20_000
	for range n {
		raw := randomEnvelopeJSON(rng)
		if checkAgainstStdlib(t, d, raw) {
			fast++
		}
	}
	// Most generated envelopes are plain: the fast path must take them.
	if fast < n/4 {
		t.Fatalf("fast path decided only %d of %d envelopes", fast, n)
	}
	t.Logf("fast path decided %d of %d", fast, n)
}

func FuzzDecoder(f *testing.F) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 64 {
		f.Add(randomEnvelopeJSON(rng))
	}
	d := NewDecoder()
	f.Fuzz(func(t *testing.T, raw []byte) { checkAgainstStdlib(t, d, raw) })
}

var (
	plainStrings = []string{"", "a", "teg", "liquid", "did:theprotocol:00000001", "fee_collector", "é", "日本", "TokensTransferred"}
	oddStrings   = []string{"<&>", "q\"uote", "back\\slash", "tab\t", "\xff", "\u2028"}
)

func randomEnvelopeJSON(rng *rand.Rand) []byte {
	// Each value is odd (needs the slow path) with probability 1/30.
	str := func() string {
		if rng.IntN(30) == 0 {
			return oddStrings[rng.IntN(len(oddStrings))]
		}
		return plainStrings[rng.IntN(len(plainStrings))]
	}
	num := func() string {
		if rng.IntN(6) > 0 {
			return strconv.FormatInt(rng.Int64N(1e12)-5e11, 10)
		}
		switch rng.IntN(8) {
		case 0:
			return "-0"
		case 1:
			return "1.5"
		case 2:
			return "9223372036854775807"
		case 3:
			return "-9223372036854775808"
		case 4:
			return "99999999999999999999"
		default:
			return strconv.FormatInt(rng.Int64N(1e12)-5e11, 10)
		}
	}
	quote := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	fields := []string{
		`"event_id":` + quote(uuid.Must(uuid.NewV7()).String()),
		`"idempotency_key":` + quote(str()),
		`"type":` + quote(str()),
		`"frame":` + quote(str()),
		`"registry":` + quote(str()),
		`"source":` + quote(str()),
		`"source_seq":` + num(),
		`"occurred_at":` + quote(time.Unix(rng.Int64N(2e9), rng.Int64N(1e9)).UTC().Format(time.RFC3339Nano)),
		`"subject":` + quote(str()),
	}
	// Half the envelopes keep encoding/json's layout (field order, no
	// whitespace: Decoder.decodeLayout), the others are shuffled and spaced.
	layout := rng.IntN(2) == 0
	if layout && rng.IntN(4) == 0 {
		fields = slices.Delete(fields, 6, 7) // source_seq is omitempty
	}
	if rng.IntN(4) > 0 {
		var ps []string
		for range rng.IntN(4) {
			ps = append(ps, fmt.Sprintf(`{"account":%s,"bucket":%s,"delta":%s}`, quote(str()), quote(str()), num()))
		}
		fields = append(fields, `"postings":[`+strings.Join(ps, ",")+`]`)
	}
	if rng.IntN(2) == 0 {
		payloads := []string{`{}`, `[]`, `{"a":[1,{"b":"c\n"}],"d":-2.5E+3,"e":true,"f":false,"g":null}`, `"s"`, `12`, `{"memo":` + quote(str()) + `}`}
		fields = append(fields, `"payload":`+payloads[rng.IntN(len(payloads))])
	}
	fields = append(fields, `"schema_version":`+num())
	if rng.IntN(10) == 0 { // rare: a key the fast path does not know
		fields = append(fields, `"Type":"x"`)
	}
	ws := func() string { return "" }
	if !layout {
		rng.Shuffle(len(fields), func(i, j int) { fields[i], fields[j] = fields[j], fields[i] })
		ws = func() string { return []string{"", "", "", " ", "\n\t"}[rng.IntN(5)] }
	}
	var b strings.Builder
	b.WriteString(ws() + "{")
	for i, f := range fields {
		if i > 0 {
			b.WriteString(ws() + "," + ws())
		}
		k, v, _ := strings.Cut(f, ":")
		b.WriteString(k + ws() + ":" + ws() + v)
	}
	b.WriteString(ws() + "}" + ws())
	return []byte(b.String())
}

func TestParseUTCMatchesUnmarshalJSON(t *testing.T) {
	cases := []string{
		"2026-11-27T03:04:05Z", "2026-11-27T03:04:05.1Z", "2026-11-27T03:04:05.123456789Z", "2024-02-29T00:00:00Z",
		"2025-02-29T00:00:00Z", "2026-04-31T00:00:00Z", "2026-13-01T00:00:00Z", "2026-00-01T00:00:00Z", "2026-01-00T00:00:00Z",
		"2026-01-01T24:00:00Z", "2026-01-01T23:60:00Z", "2026-01-01T23:59:60Z", "2026-01-01T23:59:59.Z", "2026-01-01T23:59:59,5Z",
		"2026-01-01T23:59:59.1234567890Z", "2026-01-01T23:59:59+00:00", "2026-01-01 23:59:59Z", "0000-01-01T00:00:00Z",
		"1900-02-29T00:00:00Z", "2000-02-29T00:00:00Z", "2026-1-01T00:00:00Z", "2026-01-01T00:00:0aZ", "2026-12-31T23:59:59.000000001Z",
	}
	rng := rand.New(rand.NewPCG(3, 5))
	for range 2000 {
		cases = append(cases, time.Unix(rng.Int64N(8e9)-1e9, rng.Int64N(1e9)).UTC().Format(time.RFC3339Nano))
	}
	for _, c := range cases {
		got, ok := parseUTC([]byte(c))
		var want time.Time
		err := want.UnmarshalJSON([]byte(`"` + c + `"`))
		if ok && (err != nil || !reflect.DeepEqual(got, want)) {
			t.Fatalf("%q: fast parse %v, UnmarshalJSON %v (%v)", c, got, want, err)
		}
		if !ok && err == nil && strings.HasSuffix(c, "Z") && len(c) <= 30 && !strings.Contains(c, ",") {
			t.Fatalf("%q: fast parse refused a plain UTC time", c)
		}
	}
}
