package sdk

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/theprotocol-dev/theprotocol/sdk/apiclient"
)

// Agent-to-agent mutual TLS. An agent enrols with its home registry for a
// short-lived X.509 SVID (POST /agents/{did}/svid): it generates a key,
// sends a CSR authenticated by its access token, and gets a certificate
// whose SPIFFE ID carries its DID, with the trust domain's bundle. It
// presents that SVID on its A2A calls and serves its own A2A endpoint with
// it; the receiving agent verifies the caller's chain against the bundle,
// reads the DID from the ID, and asks the registry whether that agent is
// still registered (a deregistered agent's SVID is refused before it
// expires).

// agentPathPrefix is the SPIFFE path of agent IDs:
// spiffe://<td>/agent/did/theprotocol/<uuid> for did:theprotocol:<uuid>.
const agentPathPrefix = "/agent/did/theprotocol/"

// AgentSPIFFEID is the SPIFFE ID of the agent did in trust domain td.
func AgentSPIFFEID(td spiffeid.TrustDomain, did string) (spiffeid.ID, error) {
	rest, ok := strings.CutPrefix(did, "did:theprotocol:")
	if !ok {
		return spiffeid.ID{}, fmt.Errorf("theprotocol: %q is not a did:theprotocol DID", did)
	}
	if u, err := uuid.Parse(rest); err != nil || u.String() != rest {
		return spiffeid.ID{}, fmt.Errorf("theprotocol: DID %q: want a canonical lowercase UUID", did)
	}
	return spiffeid.FromPath(td, agentPathPrefix+rest)
}

// AgentDID is the DID an agent SPIFFE ID carries.
func AgentDID(id spiffeid.ID) (string, error) {
	rest, ok := strings.CutPrefix(id.Path(), agentPathPrefix)
	if !ok {
		return "", fmt.Errorf("theprotocol: %s is not an agent ID", id)
	}
	if u, err := uuid.Parse(rest); err != nil || u.String() != rest {
		return "", fmt.Errorf("theprotocol: %s is not an agent ID", id)
	}
	return "did:theprotocol:" + rest, nil
}

// A2AAuthenticator holds an agent's X.509 SVID, renews it before it
// expires, and authenticates A2A calls both ways: HTTPClient and
// A2AClient present it when calling another agent (and accept only that
// agent's SVID from the server), ServerTLSConfig serves with it and asks
// callers for theirs, and VerifyCaller / Middleware / A2AHandler.Callers
// learn and check the caller's DID. It is an x509svid.Source and an
// x509bundle.Source, so go-spiffe's tlsconfig can use it directly.
type A2AAuthenticator struct {
	// Client is the agent's own authenticated client of its home registry
	// (Client.Agent): it enrols, and it asks about callers.
	Client *Client
	DID    string
	// TTL is the SVID lifetime asked for (0: the registry's default).
	TTL time.Duration
	// StatusTTL is how long a caller's registered status is trusted before
	// the registry is asked again (0: 10s; negative: every request).
	StatusTTL time.Duration
	// AllowUnknownCallers accepts callers the registry does not know
	// (agents of other registries of the frame), whose revocation is then
	// bounded only by their SVID's expiry. Off: only registered, active
	// agents of this registry get in.
	AllowUnknownCallers bool
	Now                 func() time.Time

	mu      sync.Mutex // guards the fields below; held during enrolment
	svid    *x509svid.SVID
	bundle  *x509bundle.Bundle
	renewAt time.Time

	smu    sync.Mutex
	status map[string]callerStatus
}

// maxCachedCallers bounds the caller status cache.
const maxCachedCallers = 10_000

type callerStatus struct {
	err error // nil: active
	at  time.Time
}

func (a *A2AAuthenticator) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// Enrol obtains a fresh SVID (a new key each time) and the trust bundle.
func (a *A2AAuthenticator) Enrol(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.enrolLocked(ctx)
}

func (a *A2AAuthenticator) enrolLocked(ctx context.Context) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		return err
	}
	body := apiclient.EnrolRequest{Csr: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr}))}
	if a.TTL > 0 {
		s := int64(a.TTL / time.Second)
		body.TtlSeconds = &s
	}
	res, err := a.Client.API().EnrolAgentSVIDWithResponse(ctx, a.DID, &apiclient.EnrolAgentSVIDParams{}, body)
	if err := CheckResult(res, err); err != nil {
		return fmt.Errorf("theprotocol: enrol %s: %w", a.DID, err)
	}
	out, err := decoded(res.JSON201, res.Body)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	svid, err := x509svid.Parse([]byte(out.SvidPem), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		return fmt.Errorf("theprotocol: the registry's SVID: %w", err)
	}
	if did, err := AgentDID(svid.ID); err != nil || did != a.DID {
		return fmt.Errorf("theprotocol: the registry issued %s, not an ID of %s", svid.ID, a.DID)
	}
	bundle, err := x509bundle.Parse(svid.ID.TrustDomain(), []byte(out.BundlePem))
	if err != nil {
		return fmt.Errorf("theprotocol: the registry's bundle: %w", err)
	}
	if _, _, err := x509svid.Verify(svid.Certificates, bundle); err != nil {
		return fmt.Errorf("theprotocol: the SVID does not chain to the bundle: %w", err)
	}
	// Renew at half the remaining lifetime: a failed renewal leaves the
	// other half to try again.
	now := a.now()
	a.svid, a.bundle = svid, bundle
	a.renewAt = now.Add(svid.Certificates[0].NotAfter.Sub(now) / 2)
	return nil
}

// current returns the SVID, renewing it when it is due. A failed renewal
// keeps serving the old SVID while it is valid.
func (a *A2AAuthenticator) current(ctx context.Context) (*x509svid.SVID, *x509bundle.Bundle, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	if a.svid == nil || !now.Before(a.renewAt) {
		err := a.enrolLocked(ctx)
		if err != nil && (a.svid == nil || !now.Before(a.svid.Certificates[0].NotAfter)) {
			return nil, nil, err
		}
	}
	return a.svid, a.bundle, nil
}

// Run renews the SVID in the background until ctx ends (handshakes also
// renew a due SVID themselves; Run keeps them from waiting for it).
func (a *A2AAuthenticator) Run(ctx context.Context) {
	for {
		a.mu.Lock()
		wait := a.renewAt.Sub(a.now())
		a.mu.Unlock()
		t := time.NewTimer(max(wait, time.Second))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, _, _ = a.current(rctx)
		cancel()
	}
}

// GetX509SVID implements x509svid.Source.
func (a *A2AAuthenticator) GetX509SVID() (*x509svid.SVID, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, _, err := a.current(ctx)
	return s, err
}

// GetX509BundleForTrustDomain implements x509bundle.Source: only the
// agent's own trust domain is trusted.
func (a *A2AAuthenticator) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, b, err := a.current(ctx)
	if err != nil {
		return nil, err
	}
	if b.TrustDomain() != td {
		return nil, fmt.Errorf("theprotocol: no bundle for trust domain %q", td)
	}
	return b, nil
}

// ExpiresAt is the current SVID's expiry (zero before enrolment).
func (a *A2AAuthenticator) ExpiresAt() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.svid == nil {
		return time.Time{}
	}
	return a.svid.Certificates[0].NotAfter
}

// HTTPClient returns an HTTP client that presents the SVID and accepts
// only the agent peerDID's SVID from the server.
func (a *A2AAuthenticator) HTTPClient(peerDID string) (*http.Client, error) {
	_, b, err := a.current(context.Background())
	if err != nil {
		return nil, err
	}
	peer, err := AgentSPIFFEID(b.TrustDomain(), peerDID)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{TLSClientConfig: tlsconfig.MTLSClientConfig(a, a, tlsconfig.AuthorizeID(peer)), ForceAttemptHTTP2: true}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, nil
}

// A2AClient returns a copy of c whose A2A calls (SendMessage) go over
// mutual TLS to the agent peerDID; its registry calls are unchanged.
func (a *A2AAuthenticator) A2AClient(c *Client, peerDID string) (*Client, error) {
	hc, err := a.HTTPClient(peerDID)
	if err != nil {
		return nil, err
	}
	cp := *c
	cp.a2aHTTP = hc
	return &cp, nil
}

// ServerTLSConfig serves with the SVID and requires every client to
// present an agent SVID of the trust domain that chains to the bundle.
// Whether that agent is still registered is checked per request
// (VerifyCaller), where the answer can say why.
func (a *A2AAuthenticator) ServerTLSConfig() (*tls.Config, error) {
	_, b, err := a.current(context.Background())
	if err != nil {
		return nil, err
	}
	prefix, err := spiffeid.FromPath(b.TrustDomain(), strings.TrimSuffix(agentPathPrefix, "/"))
	if err != nil {
		return nil, err
	}
	return tlsconfig.MTLSServerConfig(a, a, tlsconfig.AuthorizeIDPrefix(prefix)), nil
}

// Errors of VerifyCaller.
var (
	ErrNoCallerSVID  = errors.New("theprotocol: the caller presented no agent SVID")
	ErrCallerRevoked = errors.New("theprotocol: the caller's agent is not registered and active")
)

// VerifyCaller returns the DID of the agent that made r: its TLS client
// certificate must be an agent SVID chaining to the bundle (checked again
// here, so a server with another TLS set-up cannot let an unverified one
// through), and its registry must still list the agent as active.
func (a *A2AAuthenticator) VerifyCaller(r *http.Request) (string, error) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return "", ErrNoCallerSVID
	}
	id, _, err := x509svid.Verify(r.TLS.PeerCertificates, a, x509svid.WithTime(a.now()))
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoCallerSVID, err)
	}
	did, err := AgentDID(id)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoCallerSVID, err)
	}
	if err := a.callerActive(r.Context(), did); err != nil {
		return "", err
	}
	return did, nil
}

// callerActive asks the registry about did (cached for StatusTTL).
func (a *A2AAuthenticator) callerActive(ctx context.Context, did string) error {
	ttl := a.StatusTTL
	if ttl == 0 {
		ttl = 10 * time.Second
	}
	now := a.now()
	a.smu.Lock()
	if s, ok := a.status[did]; ok && ttl > 0 && now.Sub(s.at) < ttl {
		a.smu.Unlock()
		return s.err
	}
	a.smu.Unlock()
	res, err := a.Client.API().GetAgentWithResponse(ctx, did)
	err = CheckResult(res, err)
	switch {
	case IsCode(err, "not_found") && a.AllowUnknownCallers:
		err = nil
	case IsCode(err, "not_found"):
		err = fmt.Errorf("%w: %s is not an agent of this registry", ErrCallerRevoked, did)
	case err != nil:
		return fmt.Errorf("theprotocol: check caller %s: %w", did, err) // not cached
	default:
		ag, derr := decoded(res.JSON200, res.Body)
		if derr != nil {
			return derr
		}
		if ag.Status != "active" {
			err = fmt.Errorf("%w: %s is %s", ErrCallerRevoked, did, ag.Status)
		}
	}
	a.smu.Lock()
	if a.status == nil || len(a.status) >= maxCachedCallers {
		a.status = map[string]callerStatus{} // forgetting only costs a lookup
	}
	a.status[did] = callerStatus{err: err, at: now}
	a.smu.Unlock()
	return err
}

type callerKey struct{}

// CallerDID returns the verified caller's DID on a request that went
// through Middleware or an A2AHandler with Callers.
func CallerDID(ctx context.Context) (string, bool) {
	did, ok := ctx.Value(callerKey{}).(string)
	return did, ok
}

// Middleware refuses requests without a verified, active caller (401 no
// or bad SVID, 403 revoked, 503 the registry could not be asked) and
// passes the caller's DID on in the context (CallerDID). Put it in front
// of a PaymentVerifier to sell only to authenticated agents.
func (a *A2AAuthenticator) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		did, err := a.VerifyCaller(r)
		if err != nil {
			status, code := callerRefusal(err)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": err.Error()}})
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, did)))
	})
}

func callerRefusal(err error) (int, string) {
	switch {
	case errors.Is(err, ErrNoCallerSVID):
		return http.StatusUnauthorized, "unauthenticated"
	case errors.Is(err, ErrCallerRevoked):
		return http.StatusForbidden, "forbidden"
	}
	return http.StatusServiceUnavailable, "unavailable"
}
