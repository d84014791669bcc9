package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// Prefixes make each kind of credential recognisable (to people, to secret
// scanners, and to the token endpoint, which routes a client_id by prefix).
const (
	PrefixAPIKey        = "tpk_"   // developer API key: tpk_<24 hex>.<secret>
	PrefixClientID      = "tpc_"   // agent client_id
	PrefixAdminClientID = "tpadm_" // admin client_id
	PrefixClientSecret  = "tps_"   // agent and admin client secrets
	PrefixBootstrap     = "tpb_"   // bootstrap token
)

// SecretBytes is the entropy of every secret: 256 bits.
const SecretBytes = 32

// handleBytes is the entropy of public handles (client_id, API key ID).
const handleBytes = 12

// MaxSecretLen bounds any presented secret before it is hashed or parsed.
const MaxSecretLen = 256

// HashLen is the length of a stored secret hash.
const HashLen = sha256.Size

// NewSecret returns a fresh random secret "<prefix><43 base64url chars>" and
// its hash. The clear value must be shown to its owner once and then
// dropped; only the hash may be stored.
func NewSecret(prefix string) (clear string, hash []byte) {
	b := make([]byte, SecretBytes)
	_, _ = rand.Read(b) // never fails (crypto/rand, Go ≥ 1.24)
	clear = prefix + base64.RawURLEncoding.EncodeToString(b)
	return clear, HashSecret(clear)
}

// NewHandle returns a public, unguessable identifier "<prefix><24 hex>".
func NewHandle(prefix string) string {
	b := make([]byte, handleBytes)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// HashSecret is the stored form of a secret: SHA-256 of the whole string.
//
// A fast unsalted hash is right here, and a password hash (bcrypt, argon2)
// is not: every secret is 256 bits from crypto/rand, so a stolen hash
// cannot be brute-forced or looked up in a table, and a slow hash would only
// make each authentication (a hot path) cost milliseconds.
func HashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// SecretMatches reports whether presented hashes to stored, comparing in
// constant time. A nil or wrong-length stored hash never matches.
func SecretMatches(presented string, stored []byte) bool {
	if len(stored) != HashLen || len(presented) > MaxSecretLen {
		return false
	}
	return subtle.ConstantTimeCompare(HashSecret(presented), stored) == 1
}

// APIKey is a freshly generated developer API key.
type APIKey struct {
	ID    string // public handle "tpk_<hex>", stored in clear
	Clear string // the full key "tpk_<hex>.<secret>", shown once
	Hash  []byte // SHA-256 of Clear, stored
}

// NewAPIKey generates a developer API key.
func NewAPIKey() APIKey {
	id := NewHandle(PrefixAPIKey)
	secret, _ := NewSecret("")
	clear := id + "." + secret
	return APIKey{ID: id, Clear: clear, Hash: HashSecret(clear)}
}

// APIKeyID extracts the public handle from a presented API key, or reports
// false when the key is not shaped like one (no lookup is then needed).
func APIKeyID(key string) (string, bool) {
	if len(key) > MaxSecretLen || !strings.HasPrefix(key, PrefixAPIKey) {
		return "", false
	}
	id, secret, ok := strings.Cut(key, ".")
	if !ok || len(id) != len(PrefixAPIKey)+2*handleBytes || !isHex(id[len(PrefixAPIKey):]) || len(secret) != 43 || !isBase64URL(secret) {
		return "", false
	}
	return id, true
}

// ValidHandle reports whether s is a well-formed handle with prefix.
func ValidHandle(s, prefix string) bool {
	return len(s) == len(prefix)+2*handleBytes && strings.HasPrefix(s, prefix) && isHex(s[len(prefix):])
}

// ValidSecretShape reports whether s looks like a secret with prefix, so
// garbage is rejected before any hashing or lookup.
func ValidSecretShape(s, prefix string) bool {
	return len(s) == len(prefix)+43 && strings.HasPrefix(s, prefix) && isBase64URL(s[len(prefix):])
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}
