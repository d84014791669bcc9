package federation

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/theprotocol-dev/theprotocol/apperr"
)

// PathPeerListing is the mTLS route where a registry serves its signed
// list of active peers.
const PathPeerListing = "/internal/v1/federation/peers"

// Bounds on a peer listing.
const (
	// MaxListedPeers bounds the peers one listing may name: a registry
	// that lists more is not believed (a list is not a way to flood the
	// walk).
	MaxListedPeers = 1000
	// MaxListingBytes bounds a listing's encoded size.
	MaxListingBytes = 1 << 20
	// MaxListingAge is how old a listing may be when checked; a registry
	// signs a fresh one per request, so an old one is a replay.
	MaxListingAge = 10 * time.Minute
	// listingSkew tolerates a signer's clock ahead of ours.
	listingSkew = time.Minute
)

// listingContext separates these signatures from anything else the SVID's
// key might sign.
const listingContext = "theprotocol federation peer listing v1\n"

// ListedPeer is one active peer in a listing.
type ListedPeer struct {
	Registry string `json:"registry"`
	BaseURL  string `json:"base_url"`
}

// PeerListing is what a registry states about itself: its active peers,
// at a time.
type PeerListing struct {
	Registry    string       `json:"registry"`
	TrustDomain string       `json:"trust_domain"`
	Peers       []ListedPeer `json:"peers"`
	IssuedAt    time.Time    `json:"issued_at"`
}

// SignedListing is a PeerListing signed with the registry's TEG SVID key:
// anyone holding the frame's bundle can check who stated it, so the chain
// by which a registry was reached is a chain of attestations, not of
// hearsay.
type SignedListing struct {
	Payload   []byte   `json:"payload"`   // the PeerListing, JSON
	Signature []byte   `json:"signature"` // over listingContext + Payload
	Chain     [][]byte `json:"chain"`     // the signer's SVID certificates, DER, leaf first
}

// Digest identifies a signed listing (its payload's SHA-256, hex).
func (s SignedListing) Digest() string {
	d := sha256.Sum256(s.Payload)
	return hex.EncodeToString(d[:])
}

// SignListing signs l with svid (the registry's TEG SVID).
func SignListing(svid *x509svid.SVID, l PeerListing) (SignedListing, error) {
	if svid == nil || len(svid.Certificates) == 0 || svid.PrivateKey == nil {
		return SignedListing{}, errors.New("no SVID to sign with")
	}
	payload, err := json.Marshal(l)
	if err != nil {
		return SignedListing{}, err
	}
	msg := append([]byte(listingContext), payload...)
	var sig []byte
	switch svid.PrivateKey.Public().(type) {
	case ed25519.PublicKey:
		sig, err = svid.PrivateKey.Sign(rand.Reader, msg, crypto.Hash(0))
	default:
		d := sha256.Sum256(msg)
		sig, err = svid.PrivateKey.Sign(rand.Reader, d[:], crypto.SHA256)
	}
	if err != nil {
		return SignedListing{}, err
	}
	chain := make([][]byte, len(svid.Certificates))
	for i, c := range svid.Certificates {
		chain[i] = c.Raw
	}
	return SignedListing{Payload: payload, Signature: sig, Chain: chain}, nil
}

// VerifyListing checks that s was signed by the TEG of registry in trust
// domain td (its SVID chains to bundles), states that registry, is fresh
// at now, and is well formed. Every failure is apperr.Invalid.
func VerifyListing(s SignedListing, bundles x509bundle.Source, td spiffeid.TrustDomain, registry string, now time.Time) (PeerListing, error) {
	bad := func(format string, a ...any) (PeerListing, error) {
		return PeerListing{}, apperr.New(apperr.Invalid, "peer listing of %s: %s", clip(registry), fmt.Sprintf(format, a...))
	}
	if len(s.Payload) == 0 || len(s.Payload) > MaxListingBytes || len(s.Chain) == 0 || len(s.Chain) > 8 {
		return bad("malformed")
	}
	certs := make([]*x509.Certificate, len(s.Chain))
	for i, raw := range s.Chain {
		c, err := x509.ParseCertificate(raw)
		if err != nil {
			return bad("certificate %d: %v", i, err)
		}
		certs[i] = c
	}
	id, _, err := x509svid.Verify(certs, bundles)
	if err != nil {
		return bad("signer's SVID: %v", err)
	}
	want, err := spiffeid.FromSegments(td, "teg", registry)
	if err != nil || id != want {
		return bad("signed by %s, not %s", id, want)
	}
	msg := append([]byte(listingContext), s.Payload...)
	d := sha256.Sum256(msg)
	ok := false
	switch pub := certs[0].PublicKey.(type) {
	case *ecdsa.PublicKey:
		ok = ecdsa.VerifyASN1(pub, d[:], s.Signature)
	case *rsa.PublicKey:
		ok = rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], s.Signature) == nil
	case ed25519.PublicKey:
		ok = ed25519.Verify(pub, msg, s.Signature)
	}
	if !ok {
		return bad("signature does not verify")
	}
	var l PeerListing
	if err := json.Unmarshal(s.Payload, &l); err != nil {
		return bad("payload: %v", err)
	}
	switch {
	case l.Registry != registry || l.TrustDomain != td.Name():
		return bad("states %s of %s", clip(l.Registry), clip(l.TrustDomain))
	case l.IssuedAt.Before(now.Add(-MaxListingAge)) || l.IssuedAt.After(now.Add(listingSkew)):
		return bad("issued at %s, not fresh", l.IssuedAt.Format(time.RFC3339))
	case len(l.Peers) > MaxListedPeers:
		return bad("lists %d peers, more than %d", len(l.Peers), MaxListedPeers)
	}
	for _, p := range l.Peers {
		if _, err := spiffeid.FromSegments(td, "teg", p.Registry); err != nil || p.Registry == "" {
			return bad("lists %q, not a registry ID", clip(p.Registry))
		}
		if validURL(p.BaseURL) != nil {
			return bad("lists %s at %q, not an https://host:port", p.Registry, clip(p.BaseURL))
		}
	}
	return l, nil
}
