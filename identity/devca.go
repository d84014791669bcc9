package identity

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// Limits of the dev CA.
const (
	// CAValidity is how long a freshly created dev CA certificate is valid.
	CAValidity = 365 * 24 * time.Hour
	// MaxSVIDTTL caps the lifetime of an issued SVID: dev SVIDs are short-lived.
	MaxSVIDTTL = 24 * time.Hour
	// MinSVIDTTL is the shortest lifetime Issue accepts (tests use a few seconds).
	MinSVIDTTL = time.Second
	// clockSkew backdates NotBefore so a peer with a slightly slow clock accepts it.
	clockSkew = 30 * time.Second

	caCertFile = "ca.pem"
	caKeyFile  = "ca.key"
)

// CA is a dev/test certificate authority for one trust domain (one frame). Its
// key never leaves the process that opened it; components receive SVIDs, never
// the CA key. A CA is safe for concurrent use.
type CA struct {
	td   spiffeid.TrustDomain
	cert *x509.Certificate
	key  crypto.Signer
	now  func() time.Time
}

// CAOptions tunes OpenCA. The zero value is the production default.
type CAOptions struct {
	// Now is the clock used for validity windows (default time.Now).
	Now func() time.Time
}

// CADir is where OpenCA keeps the CA of td under dataDir.
func CADir(dataDir string, td spiffeid.TrustDomain) string {
	return filepath.Join(dataDir, "ca", td.Name())
}

// OpenCA loads the CA of trust domain td from <dataDir>/ca/<td>/, creating it
// (directory 0700, key 0600, PKCS#8 EC P-256) on first use. A CA whose
// certificate has expired, or whose files do not match td, is an error: it is
// never silently replaced, because every peer pinned its bundle.
func OpenCA(dataDir string, td spiffeid.TrustDomain, opts CAOptions) (*CA, error) {
	if td.IsZero() {
		return nil, errors.New("identity: OpenCA: empty trust domain")
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	dir := CADir(dataDir, td)
	certPEM, err := os.ReadFile(filepath.Join(dir, caCertFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return createCA(dir, td, now)
	case err != nil:
		return nil, fmt.Errorf("identity: read CA of %s: %w", td, err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, caKeyFile))
	if err != nil {
		return nil, fmt.Errorf("identity: read CA key of %s: %w", td, err)
	}
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("identity: CA of %s: %w", td, err)
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("identity: CA key of %s: %w", td, err)
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		return nil, fmt.Errorf("identity: CA of %s: key does not match certificate", td)
	}
	if len(cert.URIs) != 1 || cert.URIs[0].String() != td.IDString() {
		return nil, fmt.Errorf("identity: CA in %s is not for trust domain %s", dir, td)
	}
	if t := now(); t.After(cert.NotAfter) {
		return nil, fmt.Errorf("identity: CA of %s expired at %s; remove %s to start a new frame CA", td, cert.NotAfter.Format(time.RFC3339), dir)
	}
	return &CA{td: td, cert: cert, key: key, now: now}, nil
}

// NewEphemeralCA returns an in-memory CA (nothing written to disk), for tests
// and benchmarks.
func NewEphemeralCA(td spiffeid.TrustDomain, opts CAOptions) (*CA, error) {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	cert, key, err := newCACert(td, now())
	if err != nil {
		return nil, err
	}
	return &CA{td: td, cert: cert, key: key, now: now}, nil
}

func createCA(dir string, td spiffeid.TrustDomain, now func() time.Time) (*CA, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("identity: create CA dir: %w", err)
	}
	cert, key, err := newCACert(td, now())
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("identity: marshal CA key: %w", err)
	}
	// Key first (0600, exclusive create) so a crash never leaves a certificate
	// without its key; the certificate's presence marks the CA as complete.
	if err := writeFileExclusive(filepath.Join(dir, caKeyFile), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, err
	}
	if err := writeFileExclusive(filepath.Join(dir, caCertFile), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644); err != nil {
		return nil, err
	}
	return &CA{td: td, cert: cert, key: key, now: now}, nil
}

func newCACert(td spiffeid.TrustDomain, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("identity: generate CA key: %w", err)
	}
	tdURL, err := url.Parse(td.IDString())
	if err != nil {
		return nil, nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"TheProtocol dev CA"}, CommonName: td.Name()},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		URIs:                  []*url.URL{tdURL},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("identity: self-sign CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

// TrustDomain is the CA's trust domain.
func (ca *CA) TrustDomain() spiffeid.TrustDomain { return ca.td }

// Certificate is the CA certificate (the trust anchor peers pin).
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// X509Bundle is the trust bundle of the CA's trust domain.
func (ca *CA) X509Bundle() *x509bundle.Bundle {
	return x509bundle.FromX509Authorities(ca.td, []*x509.Certificate{ca.cert})
}

// SPIFFEBundle is the trust bundle in the SPIFFE bundle format, as served at
// the bundle endpoint.
func (ca *CA) SPIFFEBundle() *spiffebundle.Bundle {
	return spiffebundle.FromX509Authorities(ca.td, []*x509.Certificate{ca.cert})
}

// Issue returns a fresh SVID for id (which must be in the CA's trust domain)
// valid for ttl (clamped to [MinSVIDTTL, MaxSVIDTTL] and to the CA's own
// expiry): a new P-256 key, exactly one URI SAN, digitalSignature key usage,
// server and client auth.
func (ca *CA) Issue(id spiffeid.ID, ttl time.Duration) (*x509svid.SVID, error) {
	return ca.issue(id, ca.now(), ttl)
}

// IssueAt is Issue with an explicit start time (tests of expired SVIDs).
func (ca *CA) IssueAt(id spiffeid.ID, notBefore time.Time, ttl time.Duration) (*x509svid.SVID, error) {
	return ca.issue(id, notBefore.Add(clockSkew), ttl)
}

func (ca *CA) issue(id spiffeid.ID, now time.Time, ttl time.Duration) (*x509svid.SVID, error) {
	if id.TrustDomain() != ca.td {
		return nil, fmt.Errorf("identity: CA of %s cannot issue %s", ca.td, id)
	}
	if id.Path() == "" {
		return nil, fmt.Errorf("identity: refusing to issue an SVID for the trust domain ID %s", id)
	}
	ttl = min(max(ttl, MinSVIDTTL), MaxSVIDTTL)
	notAfter := now.Add(ttl)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("identity: generate SVID key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	u := id.URL()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"TheProtocol"}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{u},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return nil, fmt.Errorf("identity: sign SVID: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &x509svid.SVID{ID: id, Certificates: []*x509.Certificate{leaf}, PrivateKey: key}, nil
}

func randomSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("identity: serial: %w", err)
	}
	return serial, nil
}

func parseCertPEM(b []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no CERTIFICATE PEM block")
	}
	return x509.ParseCertificate(block.Bytes)
}

func parseKeyPEM(b []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("no PRIVATE KEY PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("key type %T cannot sign", k)
	}
	return s, nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	ak, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ak.Equal(b)
}

func writeFileExclusive(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("identity: create %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("identity: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("identity: sync %s: %w", path, err)
	}
	return f.Close()
}
