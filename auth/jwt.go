package auth

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/registry"
)

// MaxTokenLen bounds a presented bearer token; ours are ~500 bytes.
const MaxTokenLen = 4096

// KeyID is the "kid" of an Ed25519 public key: the first 16 bytes of its
// SHA-256, base64url. It changes when the key changes, so verifiers can
// hold old and new keys during a rotation.
func KeyID(pub ed25519.PublicKey) string {
	h := sha256.Sum256(pub)
	return base64.RawURLEncoding.EncodeToString(h[:16])
}

type header struct {
	Alg string `json:"alg"`
	Typ string `json:"typ,omitempty"`
	Kid string `json:"kid"`
}

// Signer issues bearer tokens signed with one Ed25519 key.
type Signer struct {
	key    ed25519.PrivateKey
	kid    string
	prefix string // base64url(header) + "."
	issuer string
	aud    string
	reg    string
	frame  string
	ttl    time.Duration
	now    func() time.Time
}

// SignerOptions configure NewSigner. Issuer and Audience must match the
// Verifier's; Registry and Frame are stamped into every token.
type SignerOptions struct {
	Key      ed25519.PrivateKey
	Issuer   string        // e.g. spiffe://alpha.theprotocol.test/registry/alpha-main
	Audience string        // e.g. theprotocol:alpha (tokens are valid across the frame's registries that trust this key)
	Registry string        // issuing registry ID
	Frame    string        // issuing frame ID
	TTL      time.Duration // token lifetime; 0 = registry.DefaultTokenTTL, capped at registry.MaxTokenTTL
	Now      func() time.Time
}

// NewSigner returns a Signer; it fails on a missing key or issuer.
func NewSigner(o SignerOptions) (*Signer, error) {
	if len(o.Key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("auth: signer needs an Ed25519 private key")
	}
	if o.Issuer == "" || o.Audience == "" || o.Registry == "" || o.Frame == "" {
		return nil, fmt.Errorf("auth: signer needs issuer, audience, registry and frame")
	}
	if o.TTL <= 0 {
		o.TTL = registry.DefaultTokenTTL
	}
	if o.TTL > registry.MaxTokenTTL {
		return nil, fmt.Errorf("auth: token TTL %s over the %s cap", o.TTL, registry.MaxTokenTTL)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	pub := o.Key.Public().(ed25519.PublicKey)
	kid := KeyID(pub)
	h, _ := json.Marshal(header{Alg: "EdDSA", Typ: "JWT", Kid: kid})
	return &Signer{
		key: o.Key, kid: kid, prefix: base64.RawURLEncoding.EncodeToString(h) + ".",
		issuer: o.Issuer, aud: o.Audience, reg: o.Registry, frame: o.Frame, ttl: o.TTL, now: o.Now,
	}, nil
}

// KeyID returns the signer's kid.
func (s *Signer) KeyID() string { return s.kid }

// PublicKey returns the signer's public key (for verifiers and JWKS).
func (s *Signer) PublicKey() ed25519.PublicKey { return s.key.Public().(ed25519.PublicKey) }

// TTL is the lifetime of issued tokens.
func (s *Signer) TTL() time.Duration { return s.ttl }

// Issue returns a signed token for subject with scope, valid from now for
// the signer's TTL, carrying generation, plus its claims. The token ID
// (jti) is a fresh UUIDv7.
func (s *Signer) Issue(subject, scope string, generation int64) (string, registry.Claims, error) {
	now := s.now().UTC().Truncate(time.Second)
	jti, err := uuid.NewV7()
	if err != nil {
		return "", registry.Claims{}, fmt.Errorf("auth: token id: %w", err)
	}
	c := registry.Claims{
		Issuer: s.issuer, Subject: subject, Audience: s.aud,
		IssuedAt: now.Unix(), NotBefore: now.Unix(), ExpiresAt: now.Add(s.ttl).Unix(),
		ID: jti.String(), Scope: scope, Registry: s.reg, Frame: s.frame, Generation: generation,
	}
	if err := c.Validate(); err != nil {
		return "", registry.Claims{}, fmt.Errorf("auth: refusing to sign invalid claims: %w", err)
	}
	tok, err := s.Sign(c)
	return tok, c, err
}

// Sign signs arbitrary claims as they are (tests use it to forge expired or
// wrong-scope tokens with a real key). Production code calls Issue.
func (s *Signer) Sign(c registry.Claims) (string, error) {
	payload, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("auth: encode claims: %w", err)
	}
	var b strings.Builder
	b.Grow(len(s.prefix) + base64.RawURLEncoding.EncodedLen(len(payload)) + 1 + 86)
	b.WriteString(s.prefix)
	b.WriteString(base64.RawURLEncoding.EncodeToString(payload))
	sig := ed25519.Sign(s.key, []byte(b.String()))
	b.WriteByte('.')
	b.WriteString(base64.RawURLEncoding.EncodeToString(sig))
	return b.String(), nil
}

// Verifier checks bearer tokens signed by one of a set of Ed25519 keys.
// It is safe for concurrent use and does no I/O; state checks (revocation,
// rotation) are the middleware's StateChecker's job.
type Verifier struct {
	keys   map[string]ed25519.PublicKey
	issuer string
	aud    string
	leeway time.Duration
	now    func() time.Time
	cache  *tokenCache // nil: every call verifies the signature
}

// VerifierOptions configure NewVerifier.
type VerifierOptions struct {
	Keys     []ed25519.PublicKey // current key first; older keys during rotation
	Issuer   string
	Audience string
	Leeway   time.Duration // clock skew allowed on exp/nbf; 0 = none, capped at 1 minute
	Now      func() time.Time
	// CacheSize bounds the verified tokens remembered so a repeated token
	// skips the signature check (see tokenCache): 0 means
	// DefaultTokenCacheSize, negative disables the cache.
	CacheSize int
}

// NewVerifier returns a Verifier for the given keys.
func NewVerifier(o VerifierOptions) (*Verifier, error) {
	if len(o.Keys) == 0 || o.Issuer == "" || o.Audience == "" {
		return nil, fmt.Errorf("auth: verifier needs keys, issuer and audience")
	}
	if o.Leeway < 0 || o.Leeway > time.Minute {
		return nil, fmt.Errorf("auth: leeway must be within [0, 1m]")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	keys := make(map[string]ed25519.PublicKey, len(o.Keys))
	for _, k := range o.Keys {
		if len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("auth: verifier key is not an Ed25519 public key")
		}
		keys[KeyID(k)] = k
	}
	v := &Verifier{keys: keys, issuer: o.Issuer, aud: o.Audience, leeway: o.Leeway, now: o.Now}
	if o.CacheSize == 0 {
		o.CacheSize = DefaultTokenCacheSize
	}
	if o.CacheSize > 0 {
		v.cache = newTokenCache(o.CacheSize)
	}
	return v, nil
}

// Errors returned by Verify, all apperr.Unauthenticated. The messages tell
// a client what to fix without revealing anything about keys or secrets.
var (
	ErrMalformed   = apperr.New(apperr.Unauthenticated, "bearer token is malformed")
	ErrUnknownKey  = apperr.New(apperr.Unauthenticated, "bearer token is signed with an unknown key")
	ErrSignature   = apperr.New(apperr.Unauthenticated, "bearer token signature is invalid")
	ErrExpired     = apperr.New(apperr.Unauthenticated, "bearer token has expired")
	ErrNotYetValid = apperr.New(apperr.Unauthenticated, "bearer token is not valid yet")
	ErrWrongIssuer = apperr.New(apperr.Unauthenticated, "bearer token was issued for another registry or frame")
)

// Verify checks the token's shape, algorithm, key, signature (before
// parsing any claim), issuer, audience and validity window, and returns its
// claims. Every failure is an apperr.Unauthenticated from the list above.
// A token that verified before (byte for byte) is answered from the cache:
// only its validity window is checked again.
func (v *Verifier) Verify(token string) (registry.Claims, error) {
	if len(token) == 0 || len(token) > MaxTokenLen {
		return registry.Claims{}, ErrMalformed
	}
	if v.cache != nil {
		if c, ok := v.cache.get(token); ok {
			if err := v.checkWindow(c); err != nil {
				return registry.Claims{}, err
			}
			return c, nil
		}
	}
	c, err := v.verify(token)
	if err != nil {
		return registry.Claims{}, err
	}
	if v.cache != nil {
		v.cache.put(token, c)
	}
	return c, nil
}

// checkWindow checks the claims' validity window against the clock.
func (v *Verifier) checkWindow(c registry.Claims) error {
	now := v.now().Unix()
	lee := int64(v.leeway / time.Second)
	if now >= c.ExpiresAt+lee {
		return ErrExpired
	}
	if now+lee < c.NotBefore {
		return ErrNotYetValid
	}
	return nil
}

// verify is Verify without the cache.
func (v *Verifier) verify(token string) (registry.Claims, error) {
	h64, rest, ok := strings.Cut(token, ".")
	if !ok {
		return registry.Claims{}, ErrMalformed
	}
	p64, s64, ok := strings.Cut(rest, ".")
	if !ok || strings.IndexByte(s64, '.') >= 0 || h64 == "" || p64 == "" || s64 == "" {
		return registry.Claims{}, ErrMalformed
	}
	hb, err := base64.RawURLEncoding.Strict().DecodeString(h64)
	if err != nil {
		return registry.Claims{}, ErrMalformed
	}
	var h header
	if err := strictUnmarshal(hb, &h); err != nil {
		return registry.Claims{}, ErrMalformed
	}
	if h.Alg != "EdDSA" || (h.Typ != "" && h.Typ != "JWT") {
		// "none", HS256 with the public key as secret, … are all refused.
		return registry.Claims{}, ErrMalformed
	}
	key, ok := v.keys[h.Kid]
	if !ok {
		return registry.Claims{}, ErrUnknownKey
	}
	sig, err := base64.RawURLEncoding.Strict().DecodeString(s64)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return registry.Claims{}, ErrMalformed
	}
	if !ed25519.Verify(key, []byte(token[:len(h64)+1+len(p64)]), sig) {
		return registry.Claims{}, ErrSignature
	}
	pb, err := base64.RawURLEncoding.Strict().DecodeString(p64)
	if err != nil {
		return registry.Claims{}, ErrMalformed
	}
	var c registry.Claims
	if err := strictUnmarshal(pb, &c); err != nil {
		return registry.Claims{}, ErrMalformed
	}
	if c.Issuer != v.issuer || c.Audience != v.aud {
		return registry.Claims{}, ErrWrongIssuer
	}
	if err := v.checkWindow(c); err != nil {
		return registry.Claims{}, err
	}
	if err := c.Validate(); err != nil {
		return registry.Claims{}, err
	}
	return c, nil
}

// strictUnmarshal decodes one JSON object with no unknown fields and no
// trailing data.
func strictUnmarshal(b []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data")
	}
	return nil
}

// JWK is one public key in JWKS form (RFC 8037 OKP).
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// JWKS is the verifier's key set, for peers that verify our tokens.
func (v *Verifier) JWKS() []JWK {
	out := make([]JWK, 0, len(v.keys))
	for kid, k := range v.keys {
		out = append(out, JWK{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(k), Kid: kid, Alg: "EdDSA", Use: "sig"})
	}
	return out
}
