// Package cardsig holds the rules of signed agent cards exchanged between
// the registries of a frame: what an origin registry signs, how a receiver
// verifies it, and how a registry's card-signing key is bound to its
// SPIFFE identity so that a card relayed through other registries can be
// checked without asking its origin. Pure: no I/O.
//
// Two signatures are involved:
//
//   - a Card is signed with the origin registry's Ed25519 registry key (the
//     key its tokens are signed with and its JWKS publishes);
//   - a KeyAttestation binds that key to the registry: it is signed with
//     the registry's X.509-SVID key and carries the SVID chain, so any
//     member of the frame verifies it against the frame's trust bundle.
//
// A relay forwards both unchanged. It can drop a card or hold it back, but
// it cannot forge one or alter one without the receiver noticing.
package cardsig

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/theprotocol-dev/theprotocol/registry"
)

// Limits.
const (
	// MaxBodyBytes bounds a card's body (the agent card JSON).
	MaxBodyBytes = registry.MaxCardBytes
	// MaxRegistryIDBytes bounds a registry ID.
	MaxRegistryIDBytes = 64
	// MaxChainCerts and MaxCertBytes bound an attestation's SVID chain.
	MaxChainCerts = 4
	MaxCertBytes  = 8 << 10
)

// Domains separate these signatures from any other use of the same keys.
const (
	cardDomain = "theprotocol/federation/agent-card/v1"
	keyDomain  = "theprotocol/federation/card-key/v1"
)

// Card is what an origin registry signs about one of its agents: the card
// itself, or, when Deleted, a tombstone saying the agent is deregistered.
// Version is the origin's revision of this DID's record; receivers keep
// only the highest.
type Card struct {
	DID      string    `json:"did"`
	Origin   string    `json:"origin"` // the registry the agent lives on
	Version  int64     `json:"version"`
	Deleted  bool      `json:"deleted,omitempty"`
	Body     []byte    `json:"body,omitempty"` // the agent card JSON as published; empty for a tombstone or an agent without a card
	SignedAt time.Time `json:"signed_at"`
	KeyID    string    `json:"key_id"` // the origin key's ID (KeyID)
}

// Signed is a card with its origin's signature. Hops (how many relays it
// passed) is deliberately outside the signature: each relay raises it.
type Signed struct {
	Card
	Signature []byte `json:"signature"`
	Hops      int    `json:"hops"`
}

// KeyID names an Ed25519 public key: the first 16 bytes of its SHA-256,
// base64url (the same as the token key's "kid").
func KeyID(pub ed25519.PublicKey) string {
	h := sha256.Sum256(pub)
	return base64.RawURLEncoding.EncodeToString(h[:16])
}

// ValidRegistryID reports whether s can name a registry in a card.
func ValidRegistryID(s string) bool {
	if s == "" || len(s) > MaxRegistryIDBytes {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// Check validates the card's fields (not its signature).
func (c Card) Check() error {
	switch {
	case !registry.ValidDID(c.DID):
		return errors.New("cardsig: not an agent DID")
	case !ValidRegistryID(c.Origin):
		return errors.New("cardsig: not a registry ID")
	case c.Version < 1:
		return errors.New("cardsig: version must be at least 1")
	case c.Deleted && len(c.Body) > 0:
		return errors.New("cardsig: a tombstone carries no card")
	case len(c.Body) > MaxBodyBytes:
		return fmt.Errorf("cardsig: card body larger than %d bytes", MaxBodyBytes)
	case c.SignedAt.IsZero():
		return errors.New("cardsig: no signing time")
	case c.KeyID == "" || len(c.KeyID) > 64 || strings.ContainsAny(c.KeyID, "\n\r"):
		return errors.New("cardsig: bad key ID")
	}
	return nil
}

// SigningBytes is the text the origin signs: the domain and every field,
// one per line, the body as its SHA-256. Check keeps line breaks out of the
// fields, so no two cards share a text.
func (c Card) SigningBytes() ([]byte, error) {
	if err := c.Check(); err != nil {
		return nil, err
	}
	h := sha256.Sum256(c.Body)
	del := "0"
	if c.Deleted {
		del = "1"
	}
	var b strings.Builder
	for _, s := range []string{cardDomain, c.DID, c.Origin, strconv.FormatInt(c.Version, 10), del,
		c.SignedAt.UTC().Format(time.RFC3339Nano), c.KeyID, hex.EncodeToString(h[:])} {
		b.WriteString(s)
		b.WriteByte('\n')
	}
	return []byte(b.String()), nil
}

// Sign signs c with the origin's key; c.KeyID is set from it.
func Sign(key ed25519.PrivateKey, c Card) (Signed, error) {
	c.KeyID = KeyID(key.Public().(ed25519.PublicKey))
	c.SignedAt = c.SignedAt.UTC().Truncate(time.Microsecond)
	msg, err := c.SigningBytes()
	if err != nil {
		return Signed{}, err
	}
	return Signed{Card: c, Signature: ed25519.Sign(key, msg)}, nil
}

// ErrBadSignature is a card whose signature does not verify: forged or
// altered on the way.
var ErrBadSignature = errors.New("cardsig: signature does not verify")

// Verify checks s's signature with the origin's public key pub, whose ID
// must be the one the card names.
func (s Signed) Verify(pub ed25519.PublicKey) error {
	if len(pub) != ed25519.PublicKeySize || KeyID(pub) != s.KeyID {
		return fmt.Errorf("cardsig: card signed with key %q, not the origin's known key", s.KeyID)
	}
	msg, err := s.SigningBytes()
	if err != nil {
		return err
	}
	if !ed25519.Verify(pub, msg, s.Signature) {
		return ErrBadSignature
	}
	return nil
}

// KeyAttestation binds a registry's card-signing key to the registry's
// SPIFFE identity (spiffe://<trust domain>/teg/<registry>): signed with
// the key of the X.509-SVID it carries.
type KeyAttestation struct {
	Registry  string            `json:"registry"`
	KeyID     string            `json:"key_id"`
	PublicKey ed25519.PublicKey `json:"public_key"`
	IssuedAt  time.Time         `json:"issued_at"`
	Chain     [][]byte          `json:"chain"` // the SVID chain, DER, leaf first
	Signature []byte            `json:"signature"`
}

func (a KeyAttestation) signingBytes() ([]byte, error) {
	if !ValidRegistryID(a.Registry) {
		return nil, errors.New("cardsig: attestation names no registry")
	}
	if len(a.PublicKey) != ed25519.PublicKeySize || KeyID(a.PublicKey) != a.KeyID {
		return nil, errors.New("cardsig: attestation key and key ID disagree")
	}
	if a.IssuedAt.IsZero() {
		return nil, errors.New("cardsig: attestation has no time")
	}
	var b strings.Builder
	for _, s := range []string{keyDomain, a.Registry, a.KeyID, hex.EncodeToString(a.PublicKey), a.IssuedAt.UTC().Format(time.RFC3339Nano)} {
		b.WriteString(s)
		b.WriteByte('\n')
	}
	return []byte(b.String()), nil
}

// Attest signs the binding of registry to pub with the SVID's key. The
// SVID must be the registry's own.
func Attest(svid *x509svid.SVID, registry string, pub ed25519.PublicKey, now time.Time) (KeyAttestation, error) {
	if svid == nil || len(svid.Certificates) == 0 || svid.PrivateKey == nil {
		return KeyAttestation{}, errors.New("cardsig: no SVID to attest with")
	}
	a := KeyAttestation{Registry: registry, KeyID: KeyID(pub), PublicKey: pub, IssuedAt: now.UTC().Truncate(time.Microsecond)}
	msg, err := a.signingBytes()
	if err != nil {
		return KeyAttestation{}, err
	}
	leaf := svid.Certificates[0]
	digest, opts := msg, crypto.SignerOpts(crypto.Hash(0))
	if leaf.PublicKeyAlgorithm != x509.Ed25519 {
		h := sha256.Sum256(msg)
		digest, opts = h[:], crypto.SHA256
	}
	if a.Signature, err = svid.PrivateKey.Sign(rand.Reader, digest, opts); err != nil {
		return KeyAttestation{}, fmt.Errorf("cardsig: sign attestation: %w", err)
	}
	for _, c := range svid.Certificates {
		a.Chain = append(a.Chain, c.Raw)
	}
	return a, nil
}

// Verify checks the attestation against the frame's bundles: the chain
// was valid when it was issued, chains to td's bundle, names the
// registry's TEG, and signed the binding.
func (a KeyAttestation) Verify(bundles x509bundle.Source, td spiffeid.TrustDomain) error {
	msg, err := a.signingBytes()
	if err != nil {
		return err
	}
	if len(a.Chain) == 0 || len(a.Chain) > MaxChainCerts {
		return errors.New("cardsig: attestation chain missing or too long")
	}
	for _, c := range a.Chain {
		if len(c) > MaxCertBytes {
			return errors.New("cardsig: attestation certificate too large")
		}
	}
	id, chains, err := x509svid.ParseAndVerify(a.Chain, bundles, x509svid.WithTime(a.IssuedAt))
	if err != nil {
		return fmt.Errorf("cardsig: attestation chain: %w", err)
	}
	want, err := spiffeid.FromSegments(td, "teg", a.Registry)
	if err != nil || id != want {
		return fmt.Errorf("cardsig: attestation for %s signed by %s", a.Registry, id)
	}
	leaf := chains[0][0]
	algo := x509.ECDSAWithSHA256
	switch leaf.PublicKeyAlgorithm {
	case x509.Ed25519:
		algo = x509.PureEd25519
	case x509.RSA:
		algo = x509.SHA256WithRSA
	}
	if err := leaf.CheckSignature(algo, msg, a.Signature); err != nil {
		return fmt.Errorf("cardsig: attestation signature: %w", err)
	}
	return nil
}
