package ledger

import (
	"regexp"
	"strings"
	"testing"
)

// TestIdentifierLoopsMatchPatterns checks the byte loops of KindOf against
// the regular expressions they replaced, on hand-picked and exhaustive
// single-byte variations.
func TestIdentifierLoopsMatchPatterns(t *testing.T) {
	cases := []struct {
		name    string
		fn      func(string) bool
		pattern string
		seeds   []string
	}{
		{"did", isDIDUUID, `^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`,
			[]string{"0b9d6c1e-3f2a-4c5b-8d7e-9f0a1b2c3d4e", "0B9D6C1E-3F2A-4C5B-8D7E-9F0A1B2C3D4E", "0b9d6c1e3f2a4c5b8d7e9f0a1b2c3d4e", "", "0b9d6c1e-3f2a-4c5b-8d7e-9f0a1b2c3d4", "0b9d6c1e-3f2a-4c5b-8d7e-9f0a1b2c3d4e0"}},
		{"dev", isDevID, `^[A-Za-z0-9._-]{1,64}$`,
			[]string{"acme", "A.b_c-9", strings.Repeat("x", 64), strings.Repeat("x", 65), "", "a b", "a:b"}},
		{"transit", isTransitID, `^[a-z0-9][a-z0-9:._-]{0,63}$`,
			[]string{"beta-main", "frame:beta", "0a", strings.Repeat("x", 64), strings.Repeat("x", 65), "", "-a", ":a", "Beta"}},
	}
	for _, c := range cases {
		re := regexp.MustCompile(c.pattern)
		check := func(s string) {
			if got, want := c.fn(s), re.MatchString(s); got != want {
				t.Errorf("%s(%q) = %v, pattern %s says %v", c.name, s, got, c.pattern, want)
			}
		}
		for _, seed := range c.seeds {
			check(seed)
			// Every single-byte substitution at every position, plus
			// insertions at the ends.
			for i := 0; i <= len(seed); i++ {
				for b := 0; b < 256; b++ {
					if i < len(seed) {
						check(seed[:i] + string([]byte{byte(b)}) + seed[i+1:])
					}
					check(seed[:i] + string([]byte{byte(b)}) + seed[i:])
				}
			}
		}
	}
}
