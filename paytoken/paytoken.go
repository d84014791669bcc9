// Package paytoken is the payment token of paid agent calls: a compact JWS
// (EdDSA over Ed25519) that a payer's registry signs after reserving funds
// for a payee with a hold. The payee checks it offline against the
// registry's published key set (GET /api/v1/auth/jwks.json), serves the
// call, then asks the registry to settle it; the registry checks it again
// and posts the hold at most once.
//
// The header's typ is "payment+jwt", never "JWT": a payment token is not a
// bearer token and a bearer token is not a payment token, even though the
// registry signs both with one key (bearer tokens carry the frame as
// audience, payment tokens the payee's DID, and each verifier checks the
// type first).
//
// Pure: no I/O. Errors are *apperr.Error with a code a caller can map to
// an HTTP status.
package paytoken

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/theprotocol-dev/theprotocol/apperr"
)

// Type is the JOSE "typ" of payment tokens.
const Type = "payment+jwt"

// MaxLen bounds a presented token; ours are ~450 bytes.
const MaxLen = 2048

// Claims are what a payment token asserts: the issuing registry reserved
// up to MaxUnits of Currency from Payer for Payee in hold HoldID until
// ExpiresAt.
type Claims struct {
	Issuer    string    `json:"iss"`   // the registry's issuer URI (a SPIFFE ID)
	Payer     string    `json:"sub"`   // the paying agent's DID
	Payee     string    `json:"aud"`   // the agent that may settle it
	HoldID    uuid.UUID `json:"hold"`  // the reservation on the payer's TEG
	MaxUnits  int64     `json:"max"`   // base units; a settlement takes at most this
	Currency  string    `json:"cur"`   // e.g. AVT
	IssuedAt  int64     `json:"iat"`   // unix seconds
	ExpiresAt int64     `json:"exp"`   // unix seconds; equals the hold's expiry (rounded down)
	Nonce     string    `json:"nonce"` // random; lets a payee refuse a token it has seen
	Registry  string    `json:"reg"`   // the issuing registry's ID (where to settle)
	Frame     string    `json:"frame"`
	// PayeeRegistry is the payee's home registry when it is not the
	// issuer (a cross-registry payment): only that registry may settle or
	// release the token on the payee's behalf. Empty: the payee lives on
	// the issuing registry.
	PayeeRegistry string `json:"preg,omitempty"`
}

// Validate checks the claims' shape (not their signature or time).
func (c Claims) Validate() error {
	switch {
	case c.Issuer == "" || c.Registry == "" || c.Frame == "":
		return apperr.New(apperr.Invalid, "payment token has no issuer, registry or frame")
	case c.Payer == "" || c.Payee == "" || c.Payer == c.Payee:
		return apperr.New(apperr.Invalid, "payment token needs distinct payer and payee")
	case c.HoldID == uuid.Nil:
		return apperr.New(apperr.Invalid, "payment token names no hold")
	case c.MaxUnits <= 0:
		return apperr.New(apperr.Invalid, "payment token maximum must be positive")
	case c.Currency == "":
		return apperr.New(apperr.Invalid, "payment token has no currency")
	case c.ExpiresAt <= c.IssuedAt:
		return apperr.New(apperr.Invalid, "payment token expires before it was issued")
	case len(c.Nonce) < 16:
		return apperr.New(apperr.Invalid, "payment token nonce is too short")
	case c.PayeeRegistry == c.Registry:
		return apperr.New(apperr.Invalid, "payment token names its own registry as the payee's other registry")
	}
	return nil
}

// Expiry is ExpiresAt as a time.
func (c Claims) Expiry() time.Time { return time.Unix(c.ExpiresAt, 0).UTC() }

// KeyID is the "kid" of an Ed25519 public key: the first 16 bytes of its
// SHA-256, base64url (the same derivation as the registry's JWKS, so one
// published key set serves both token kinds).
func KeyID(pub ed25519.PublicKey) string {
	h := sha256.Sum256(pub)
	return base64.RawURLEncoding.EncodeToString(h[:16])
}

// NewNonce returns 16 random bytes, base64url.
func NewNonce() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("paytoken: nonce: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

type header struct {
	Alg string `json:"alg"`
	Typ string `json:"typ"`
	Kid string `json:"kid"`
}

// Sign encodes and signs c with key. It refuses invalid claims.
func Sign(key ed25519.PrivateKey, c Claims) (string, error) {
	if len(key) != ed25519.PrivateKeySize {
		return "", fmt.Errorf("paytoken: signing needs an Ed25519 private key")
	}
	if err := c.Validate(); err != nil {
		return "", err
	}
	h, _ := json.Marshal(header{Alg: "EdDSA", Typ: Type, Kid: KeyID(key.Public().(ed25519.PublicKey))})
	p, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("paytoken: encode claims: %w", err)
	}
	signing := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p)
	return signing + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(key, []byte(signing))), nil
}

// Errors of Verify. Malformed, unknown-key and bad-signature tokens are
// all "forged" to a caller: Invalid, nothing to retry.
var (
	ErrMalformed     = apperr.New(apperr.Invalid, "payment token is malformed")
	ErrUnknownKey    = apperr.New(apperr.Invalid, "payment token is signed with a key this verifier does not know")
	ErrSignature     = apperr.New(apperr.Invalid, "payment token signature is invalid")
	ErrWrongIssuer   = apperr.New(apperr.Invalid, "payment token was issued by another registry than its key's")
	ErrExpired       = apperr.New(apperr.FailedPrecondition, "payment token has expired")
	ErrWrongAudience = apperr.New(apperr.Forbidden, "payment token was issued for another payee")
)

// Key is a verification key and the issuer it signs for.
type Key struct {
	Public ed25519.PublicKey
	Issuer string
}

// KeyFunc finds the key for a kid (ok false: unknown).
type KeyFunc func(kid string) (Key, bool)

// Verify checks the token's shape, type, algorithm, key and signature
// (before reading any claim), then that its issuer is the key's, its
// claims are well formed and it has not expired at now. It does not check
// the audience (VerifyFor does).
func Verify(tok string, keys KeyFunc, now time.Time) (Claims, error) {
	if len(tok) == 0 || len(tok) > MaxLen {
		return Claims{}, ErrMalformed
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return Claims{}, ErrMalformed
	}
	hraw, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return Claims{}, ErrMalformed
	}
	var h header
	if err := strictDecode(hraw, &h); err != nil || h.Alg != "EdDSA" || h.Typ != Type || h.Kid == "" {
		return Claims{}, ErrMalformed
	}
	k, ok := keys(h.Kid)
	if !ok || len(k.Public) != ed25519.PublicKeySize {
		return Claims{}, ErrUnknownKey
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != ed25519.SignatureSize {
		return Claims{}, ErrMalformed
	}
	if !ed25519.Verify(k.Public, []byte(parts[0]+"."+parts[1]), sig) {
		return Claims{}, ErrSignature
	}
	praw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return Claims{}, ErrMalformed
	}
	var c Claims
	if err := strictDecode(praw, &c); err != nil {
		return Claims{}, ErrMalformed
	}
	if err := c.Validate(); err != nil {
		return Claims{}, err
	}
	if c.Issuer != k.Issuer {
		return Claims{}, ErrWrongIssuer
	}
	if now.Unix() >= c.ExpiresAt {
		return Claims{}, ErrExpired
	}
	return c, nil
}

// Peek decodes a token's claims WITHOUT checking its signature, type or
// expiry. It is only for routing: a registry that did not issue a token
// reads where to forward it (Registry, Frame); the issuer verifies it.
// Never trust what it returns.
func Peek(tok string) (Claims, error) {
	if len(tok) == 0 || len(tok) > MaxLen {
		return Claims{}, ErrMalformed
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return Claims{}, ErrMalformed
	}
	praw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return Claims{}, ErrMalformed
	}
	var c Claims
	if err := strictDecode(praw, &c); err != nil {
		return Claims{}, ErrMalformed
	}
	if err := c.Validate(); err != nil {
		return Claims{}, err
	}
	return c, nil
}

// VerifyFor is Verify plus the audience: the token must name payee.
func VerifyFor(tok, payee string, keys KeyFunc, now time.Time) (Claims, error) {
	c, err := Verify(tok, keys, now)
	if err != nil {
		return c, err
	}
	if c.Payee != payee {
		return Claims{}, ErrWrongAudience
	}
	return c, nil
}

// StaticKeys is a KeyFunc over fixed keys of one issuer.
func StaticKeys(issuer string, pubs ...ed25519.PublicKey) KeyFunc {
	m := make(map[string]Key, len(pubs))
	for _, p := range pubs {
		m[KeyID(p)] = Key{Public: p, Issuer: issuer}
	}
	return func(kid string) (Key, bool) { k, ok := m[kid]; return k, ok }
}

func strictDecode(raw []byte, dst any) error {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	if err := d.Decode(dst); err != nil {
		return err
	}
	if d.More() {
		return fmt.Errorf("trailing data")
	}
	return nil
}
