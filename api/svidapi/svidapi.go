// Package svidapi serves agent SVID enrolment: POST /agents/{did}/svid.
// An agent authenticated with its own access token sends a certificate
// signing request for a key it keeps; the registry's dev CA (package
// identity) answers with a short-lived X.509 SVID whose SPIFFE ID carries
// the agent's DID, and the frame's X.509 trust bundle, which the agent uses
// to verify the SVIDs of the agents it talks to (agent-to-agent mTLS, see
// sdk.A2AAuthenticator).
package svidapi

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/theprotocol-dev/theprotocol/api"
	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/identity"
	"github.com/theprotocol-dev/theprotocol/registry"
)

// DefaultTTL is an agent SVID's lifetime when the request names none:
// short, because a registry other than the issuer learns of a revocation
// only through expiry. identity.MaxAgentSVIDTTL caps any request.
const DefaultTTL = 15 * time.Minute

// maxCSR bounds the CSR field (a P-256 or P-384 CSR is well under 1 KiB).
const maxCSR = 8 << 10

// EnrolRequest is the body of POST /agents/{did}/svid.
type EnrolRequest struct {
	// CSR is a PKCS#10 certificate request signed by the agent's key, PEM
	// ("CERTIFICATE REQUEST") or base64 DER. Its names are ignored: the
	// SVID carries exactly the agent's ID.
	CSR string `json:"csr"`
	// TTLSeconds asks for a lifetime (default 900, clamped to 1..3600).
	TTLSeconds *int64 `json:"ttl_seconds,omitempty"`
}

// EnrolResponse is an issued agent SVID.
type EnrolResponse struct {
	DID         string    `json:"did"`
	SPIFFEID    string    `json:"spiffe_id"`
	TrustDomain string    `json:"trust_domain"`
	SVIDPEM     string    `json:"svid_pem"`   // the certificate chain, leaf first
	BundlePEM   string    `json:"bundle_pem"` // the trust domain's X.509 authorities
	ExpiresAt   time.Time `json:"expires_at"`
}

// CA issues agent SVIDs (*identity.CA).
type CA interface {
	TrustDomain() spiffeid.TrustDomain
	SignCSR(csrDER []byte, id spiffeid.ID, ttl time.Duration) ([]*x509.Certificate, error)
	X509Bundle() *x509bundle.Bundle
}

// Agents reads agents of this registry (*registrystore.Store).
type Agents interface {
	Agent(ctx context.Context, did string) (registry.Agent, error)
}

// Handler serves the route.
type Handler struct {
	// CA issues the SVIDs; nil when the node's identity comes from SPIRE
	// (agents are then SPIRE registration entries): the route answers 503.
	CA          CA
	Agents      Agents
	Auth        gin.HandlerFunc // nil when the group already authenticates
	Idempotency api.IdempotencyStore
	Now         func() time.Time
}

// Mount registers POST /agents/:did/svid on v1: the agent itself (agent
// scope, subject = did), Idempotency-Key honoured when present.
func (h *Handler) Mount(v1 *gin.RouterGroup) {
	p := v1
	if h.Auth != nil {
		p = v1.Group("", h.Auth)
	}
	now := h.Now
	if now == nil {
		now = time.Now
	}
	p.POST("/agents/:did/svid", api.RequireScope(api.ScopeAgent), api.Idempotency(h.Idempotency, false, now), h.enrol)
}

func (h *Handler) enrol(c *gin.Context) {
	var req EnrolRequest
	if err := api.DecodeJSON(c, &req); err != nil {
		api.WriteError(c, err)
		return
	}
	did := c.Param("did")
	if p, _ := api.PrincipalFrom(c); p.Subject != did {
		api.WriteError(c, apperr.New(apperr.Forbidden, "an agent enrols only for its own DID"))
		return
	}
	if h.CA == nil {
		api.WriteError(c, apperr.New(apperr.Unavailable, "this registry takes its identities from SPIRE: agent SVIDs are SPIRE registration entries, not enrolled here"))
		return
	}
	csr, err := decodeCSR(req.CSR)
	if err != nil {
		api.WriteError(c, err)
		return
	}
	ttl := DefaultTTL
	if req.TTLSeconds != nil {
		if *req.TTLSeconds < 1 || *req.TTLSeconds > int64(identity.MaxAgentSVIDTTL/time.Second) {
			api.WriteError(c, apperr.New(apperr.Invalid, "ttl_seconds must be 1..%d", int64(identity.MaxAgentSVIDTTL/time.Second)))
			return
		}
		ttl = time.Duration(*req.TTLSeconds) * time.Second
	}
	// The token middleware already refuses deregistered agents; reading
	// the agent again keeps the rule where the SVID is minted.
	a, err := h.Agents.Agent(c.Request.Context(), did)
	if err != nil {
		api.WriteError(c, err)
		return
	}
	if a.Status != registry.AgentActive {
		api.WriteError(c, apperr.New(apperr.FailedPrecondition, "agent %s is %s", did, a.Status))
		return
	}
	id, err := identity.AgentID(h.CA.TrustDomain(), did)
	if err != nil {
		api.WriteError(c, apperr.Wrap(err, apperr.Invalid, "DID"))
		return
	}
	chain, err := h.CA.SignCSR(csr, id, ttl)
	if err != nil {
		api.WriteError(c, apperr.Wrap(err, apperr.Invalid, "certificate request refused"))
		return
	}
	c.JSON(http.StatusCreated, EnrolResponse{
		DID: did, SPIFFEID: id.String(), TrustDomain: id.TrustDomain().Name(),
		SVIDPEM: certsPEM(chain), BundlePEM: certsPEM(h.CA.X509Bundle().X509Authorities()),
		ExpiresAt: chain[0].NotAfter.UTC(),
	})
}

// decodeCSR accepts PEM or base64 DER and checks the request's signature
// (proof that the caller holds the key the SVID will name).
func decodeCSR(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, apperr.New(apperr.Invalid, "csr is required")
	}
	if len(s) > maxCSR {
		return nil, apperr.New(apperr.Invalid, "csr is larger than %d bytes", maxCSR)
	}
	var der []byte
	if strings.HasPrefix(s, "-----BEGIN") {
		b, rest := pem.Decode([]byte(s))
		if b == nil || b.Type != "CERTIFICATE REQUEST" || len(bytes.TrimSpace(rest)) != 0 {
			return nil, apperr.New(apperr.Invalid, "csr: want one PEM block of type CERTIFICATE REQUEST")
		}
		der = b.Bytes
	} else {
		var err error
		if der, err = base64.StdEncoding.DecodeString(s); err != nil {
			return nil, apperr.New(apperr.Invalid, "csr: neither PEM nor base64 DER")
		}
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, apperr.New(apperr.Invalid, "csr: %v", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, apperr.New(apperr.Invalid, "csr: bad signature: %v", err)
	}
	return der, nil
}

func certsPEM(certs []*x509.Certificate) string {
	var b strings.Builder
	for _, c := range certs {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return b.String()
}

var _ CA = (*identity.CA)(nil)
