package identity

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Agent identities (optional): an agent enrols for a short-lived
// X.509 SVID whose SPIFFE ID carries its DID, for agent-to-agent mTLS. The
// agent keeps its private key: the registry signs a CSR. Revocation is an
// in-memory set consulted per handshake, so it takes effect on the issuing
// registry's next handshake (well within a second).

// didPrefix is the DID method of TheProtocol.
const didPrefix = "did:theprotocol:"

// MaxAgentSVIDTTL caps agent SVID lifetimes: revocation elsewhere than on the
// issuing registry relies on expiry.
const MaxAgentSVIDTTL = time.Hour

// AgentID maps did:theprotocol:<uuid> to spiffe://<td>/agent/did/theprotocol/<uuid>
// (colons are not allowed in SPIFFE path segments).
func AgentID(td spiffeid.TrustDomain, did string) (spiffeid.ID, error) {
	rest, ok := strings.CutPrefix(did, didPrefix)
	if !ok {
		return spiffeid.ID{}, fmt.Errorf("identity: %q is not a did:theprotocol DID", did)
	}
	u, err := uuid.Parse(rest)
	if err != nil || u.String() != rest {
		return spiffeid.ID{}, fmt.Errorf("identity: DID %q: want a canonical lowercase UUID", did)
	}
	return spiffeid.FromSegments(td, "agent", "did", "theprotocol", rest)
}

// DIDFromAgentID is the inverse of AgentID.
func DIDFromAgentID(id spiffeid.ID) (string, error) {
	rest, ok := strings.CutPrefix(id.Path(), "/agent/did/theprotocol/")
	if !ok {
		return "", fmt.Errorf("identity: %s is not an agent ID", id)
	}
	if _, err := uuid.Parse(rest); err != nil {
		return "", fmt.Errorf("identity: %s is not an agent ID", id)
	}
	return didPrefix + rest, nil
}

// SignCSR issues an SVID for id to the holder of the CSR's key. The CSR's
// signature is checked (proof of possession); its subject and SANs are
// ignored: the SVID carries exactly id. ttl is clamped to
// [MinSVIDTTL, MaxAgentSVIDTTL].
func (ca *CA) SignCSR(csrDER []byte, id spiffeid.ID, ttl time.Duration) ([]*x509.Certificate, error) {
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, fmt.Errorf("identity: parse CSR: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("identity: CSR signature: %w", err)
	}
	if id.TrustDomain() != ca.td || id.Path() == "" {
		return nil, fmt.Errorf("identity: CA of %s cannot issue %s", ca.td, id)
	}
	now := ca.now()
	ttl = min(max(ttl, MinSVIDTTL), MaxAgentSVIDTTL)
	notAfter := min(now.Add(ttl).UnixNano(), ca.cert.NotAfter.UnixNano())
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"TheProtocol agent"}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              time.Unix(0, notAfter),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{id.URL()},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, csr.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("identity: sign agent SVID: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return []*x509.Certificate{leaf}, nil
}

// Revocations is the set of revoked SPIFFE IDs (e.g. deregistered agents).
// Entries are kept until the caller forgets them (after the longest SVID
// lifetime they could hold has passed). Safe for concurrent use.
type Revocations struct {
	mu  sync.RWMutex
	ids map[spiffeid.ID]time.Time
}

// NewRevocations returns an empty set.
func NewRevocations() *Revocations { return &Revocations{ids: map[spiffeid.ID]time.Time{}} }

// Revoke refuses id from the next handshake on.
func (r *Revocations) Revoke(id spiffeid.ID, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ids[id] = now
}

// Revoked reports whether id is revoked.
func (r *Revocations) Revoked(id spiffeid.ID) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := r.ids[id]
	return ok
}

// Forget drops revocations older than before (their SVIDs have expired).
func (r *Revocations) Forget(before time.Time) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for id, at := range r.ids {
		if at.Before(before) {
			delete(r.ids, id)
			n++
		}
	}
	return n
}

// AuthorizeNotRevoked refuses revoked IDs and otherwise defers to next.
func AuthorizeNotRevoked(r *Revocations, next Authorizer) Authorizer {
	return func(id spiffeid.ID, chains [][]*x509.Certificate) error {
		if r.Revoked(id) {
			return fmt.Errorf("%q is revoked", id)
		}
		return next(id, chains)
	}
}
