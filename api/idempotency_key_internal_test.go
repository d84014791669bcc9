package api

import (
	"regexp"
	"strings"
	"testing"
)

// TestValidIdempotencyKeyMatchesPattern checks the byte loop against the
// documented pattern it replaces.
func TestValidIdempotencyKeyMatchesPattern(t *testing.T) {
	pattern := regexp.MustCompile(`^[A-Za-z0-9._:-]{1,200}$`)
	keys := []string{"", "a", "A-z_0.9:x", strings.Repeat("k", 200), strings.Repeat("k", 201), "a b", "é", "a/b", "a\n", "key+1", "ключ", "x\x00"}
	for c := 0; c < 256; c++ {
		keys = append(keys, "k"+string(rune(c)), string([]byte{byte(c)}))
	}
	for _, k := range keys {
		if got, want := validIdempotencyKey(k), pattern.MatchString(k); got != want {
			t.Errorf("validIdempotencyKey(%q) = %v, pattern says %v", k, got, want)
		}
	}
}
