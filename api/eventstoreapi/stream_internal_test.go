package eventstoreapi

import "testing"

func TestParseCursor(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in  string
		seg int64
		pos int
		ok  bool
	}{
		{"12.3", 12, 3, true},
		{"0.0", 0, 0, true},
		{"12", 0, 0, false},
		{"12.", 0, 0, false},
		{".3", 0, 0, false},
		{"-1.0", 0, 0, false},
		{"1.-2", 0, 0, false},
		{"a.b", 0, 0, false},
		{"12;drop", 0, 0, false},
		{"99999999999999999999.1", 0, 0, false},
		{"1.2.3", 0, 0, false},
	} {
		seg, pos, ok := parseCursor(tc.in)
		if ok != tc.ok || (ok && (seg != tc.seg || pos != tc.pos)) {
			t.Errorf("parseCursor(%q) = %d, %d, %v; want %d, %d, %v", tc.in, seg, pos, ok, tc.seg, tc.pos, tc.ok)
		}
	}
}
