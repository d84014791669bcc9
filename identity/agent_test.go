package identity_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/identity"
)

// enrolAgent plays an agent: it generates its key, sends a CSR, and gets an
// SVID carrying its DID; the key never leaves it.
func enrolAgent(t testing.TB, ca *identity.CA, did string) *x509svid.SVID {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	require.NoError(t, err)
	id, err := identity.AgentID(ca.TrustDomain(), did)
	require.NoError(t, err)
	certs, err := ca.SignCSR(csr, id, 10*time.Minute)
	require.NoError(t, err)
	return &x509svid.SVID{ID: id, Certificates: certs, PrivateKey: key}
}

func TestAgentEnrolmentMTLSAndRevocation(t *testing.T) {
	ca, err := identity.NewEphemeralCA(alphaTD, identity.CAOptions{})
	require.NoError(t, err)
	didA, didB := "did:theprotocol:"+uuid.NewString(), "did:theprotocol:"+uuid.NewString()
	a, b := enrolAgent(t, ca, didA), enrolAgent(t, ca, didB)
	got, err := identity.DIDFromAgentID(a.ID)
	require.NoError(t, err)
	require.Equal(t, didA, got)

	// Agent B serves; agent A calls it: agent-to-agent mTLS, each authorising
	// the other's DID-bearing ID, with the issuing registry's revocations.
	revoked := identity.NewRevocations()
	bNode := newNode(t, identityFixed{b, ca}, b.ID, identity.TLSOptions{})
	aNode := newNode(t, identityFixed{a, ca}, a.ID, identity.TLSOptions{})
	srv := serve(t, bNode, identity.AuthorizeNotRevoked(revoked, identity.AuthorizeID(a.ID)))
	body, err := call(aNode.client(b.ID), srv.URL)
	require.NoError(t, err)
	require.Equal(t, a.ID.String(), body)

	// Revocation takes effect at the very next handshake: no cache or
	// refresh interval stands between Revoke and the refusal, and the
	// refusal is the authorizer's (counted as unauthorized), not some
	// other handshake failure. (BenchmarkRevokedAgentRefused measures it.)
	refusedBefore := bNode.failures("server", identity.ReasonUnauthorized)
	revoked.Revoke(a.ID, time.Now())
	_, err = call(aNode.client(b.ID), srv.URL) // new client: new connection, full handshake
	require.Error(t, err)
	waitFor(t, 10*time.Second, "the revoked agent's handshake counted as unauthorized", func() bool {
		return bNode.failures("server", identity.ReasonUnauthorized) == refusedBefore+1
	})

	// Bad inputs.
	_, err = identity.AgentID(alphaTD, "did:web:example.org")
	require.Error(t, err)
	_, err = identity.AgentID(alphaTD, "did:theprotocol:not-a-uuid")
	require.Error(t, err)
	_, err = ca.SignCSR([]byte("junk"), a.ID, time.Minute)
	require.Error(t, err)
	_, err = identity.DIDFromAgentID(spiffeid.RequireFromPath(alphaTD, "/registry/main"))
	require.Error(t, err)
}

// identityFixed is a Source serving one fixed SVID and a CA's bundle.
type identityFixed struct {
	svid *x509svid.SVID
	ca   *identity.CA
}

func (f identityFixed) GetX509SVID() (*x509svid.SVID, error) { return f.svid, nil }
func (f identityFixed) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	return f.ca.X509Bundle().GetX509BundleForTrustDomain(td)
}
func (f identityFixed) Close() error { return nil }
