// Package registryapi is the registry role's HTTP API under /api/v1:
// developer sign-up and API keys, bootstrap tokens, agents and their
// credentials, agent cards and discovery, organisations, the token
// endpoint and a small admin surface. Handlers validate DTOs, authorise the
// principal, call the store or, for what spans the TEG and the workflows,
// the onboarding and bonds services; errors are apperr codes mapped to HTTP
// by api.WriteError. See registry/README.md for the design.
package registryapi

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/theprotocol-dev/theprotocol/api"
	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/auth"
	"github.com/theprotocol-dev/theprotocol/bonds"
	"github.com/theprotocol-dev/theprotocol/db/registrystore"
	"github.com/theprotocol-dev/theprotocol/onboarding"
	"github.com/theprotocol-dev/theprotocol/registry"
)

// RateLimit is one limiter's setting: Burst requests at once, then one per
// Interval, per key.
type RateLimit struct {
	Interval time.Duration
	Burst    int
}

// RateLimits configure the brute-force protection of the unauthenticated
// and credential-checking endpoints. Zero values take the defaults.
type RateLimits struct {
	// PerCredential limits token requests per client_id / API key ID
	// (default: burst 10, then 1 per 2s).
	PerCredential RateLimit
	// PerAddress limits sign-up, agent creation and token requests per
	// remote IP (default: burst 60, then 5/s).
	PerAddress RateLimit
	// MaxKeys caps the keys each limiter tracks (default 100,000).
	MaxKeys int
	// Disabled turns limiting off (benchmarks only).
	Disabled bool
}

// Options wire a Handler. Store, SigningKey, Issuer, Audience and
// Idempotency are required.
type Options struct {
	Store       *registrystore.Store
	Idempotency api.IdempotencyStore // db.NewIdempotencyStore(pool); wrapped here so stored responses are encrypted
	SigningKey  ed25519.PrivateKey   // auth.LoadOrCreateKey(path)
	// OldVerificationKeys are previous public keys still accepted during a
	// key rotation (their tokens expire within the token TTL).
	OldVerificationKeys []ed25519.PublicKey
	Issuer              string        // e.g. spiffe://alpha.theprotocol.test/registry/alpha-main
	Audience            string        // e.g. theprotocol:alpha
	TokenTTL            time.Duration // default registry.DefaultTokenTTL (15 min)
	BootstrapTTL        time.Duration // default registry.DefaultBootstrapTTL (15 min)
	RateLimits          RateLimits

	// Onboarding creates developers and agents and deregisters agents
	// (their TEG accounts and reputation bonds). Nil: a service on Store
	// alone, which opens no accounts and takes no bond.
	Onboarding *onboarding.Service
	// Bonds answers GET /agents/{did}/reputation-bond (nil: 404, this
	// registry runs no bonds): *bonds.Service, or the TEG's process when
	// the roles run apart.
	Bonds BondStatuses

	Now func() time.Time
	Log *slog.Logger
}

// BondStatuses reports an agent's reputation bond (NotFound: none).
type BondStatuses interface {
	Status(ctx context.Context, agentDID string) (bonds.Status, error)
}

var _ BondStatuses = (*bonds.Service)(nil)

// Handler serves the registry API.
type Handler struct {
	o        Options
	store    *registrystore.Store
	signer   *auth.Signer
	verifier *auth.Verifier
	idem     api.IdempotencyStore
	credLim  *auth.Limiter
	addrLim  *auth.Limiter
	now      func() time.Time
	log      *slog.Logger
	authMW   gin.HandlerFunc
}

// New validates o and returns a Handler.
func New(o Options) (*Handler, error) {
	if o.Store == nil || o.Idempotency == nil {
		return nil, fmt.Errorf("registryapi: Store and Idempotency are required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.BootstrapTTL <= 0 {
		o.BootstrapTTL = registry.DefaultBootstrapTTL
	}
	if o.BootstrapTTL > registry.MaxBootstrapTTL {
		return nil, fmt.Errorf("registryapi: bootstrap TTL %s over the %s cap", o.BootstrapTTL, registry.MaxBootstrapTTL)
	}
	if o.Onboarding == nil {
		o.Onboarding = &onboarding.Service{Registry: o.Store, Now: o.Now, Log: o.Log}
	}
	signer, err := auth.NewSigner(auth.SignerOptions{
		Key: o.SigningKey, Issuer: o.Issuer, Audience: o.Audience, Registry: o.Store.RegistryID(), Frame: o.Store.Frame(), TTL: o.TokenTTL, Now: o.Now,
	})
	if err != nil {
		return nil, err
	}
	verifier, err := auth.NewVerifier(auth.VerifierOptions{
		Keys: append([]ed25519.PublicKey{signer.PublicKey()}, o.OldVerificationKeys...), Issuer: o.Issuer, Audience: o.Audience, Now: o.Now,
	})
	if err != nil {
		return nil, err
	}
	sealKey, err := auth.DeriveKey(o.SigningKey, "idempotency-responses")
	if err != nil {
		return nil, err
	}
	idem, err := newSealedIdempotency(o.Idempotency, sealKey)
	if err != nil {
		return nil, err
	}
	rl := o.RateLimits
	if rl.PerCredential.Interval <= 0 {
		rl.PerCredential = RateLimit{Interval: 2 * time.Second, Burst: 10}
	}
	if rl.PerAddress.Interval <= 0 {
		rl.PerAddress = RateLimit{Interval: 200 * time.Millisecond, Burst: 60}
	}
	if rl.MaxKeys <= 0 {
		rl.MaxKeys = 100_000
	}
	o.RateLimits = rl
	h := &Handler{
		o: o, store: o.Store, signer: signer, verifier: verifier, idem: idem,
		credLim: auth.NewLimiter(rl.PerCredential.Interval, rl.PerCredential.Burst, rl.MaxKeys, o.Now),
		addrLim: auth.NewLimiter(rl.PerAddress.Interval, rl.PerAddress.Burst, rl.MaxKeys, o.Now),
		now:     o.Now, log: o.Log,
	}
	h.authMW = auth.Middleware(verifier, o.Store)
	return h, nil
}

// AuthMiddleware authenticates bearer tokens issued by this registry; other
// roles (the TEG's routes) mount it on their protected groups, followed by
// api.RequireScope.
func (h *Handler) AuthMiddleware() gin.HandlerFunc { return h.authMW }

// Verifier returns the token verifier (for other roles and tests).
func (h *Handler) Verifier() *auth.Verifier { return h.verifier }

// Signer returns the token signer (tests forge tokens with it).
func (h *Handler) Signer() *auth.Signer { return h.signer }

// Mount registers the registry routes on v1 (the /api/v1 group):
//
//	public      POST /developers, POST /auth/token, GET /auth/jwks.json
//	bootstrap   POST /agents (Authorization: Bearer <bootstrap token>)
//	any scope   GET /agents, GET /agents/:did, GET /agents/:did/card,
//	            GET /agents/:did/reputation-bond, POST /auth/revoke
//	developer   GET /developers/me, POST /developers/me/api-key, POST /bootstrap-tokens,
//	            POST /organisations, GET /organisations/:id, POST /organisations/:id/members,
//	            POST /organisations/:id/members/accept, DELETE /organisations/:id/members/:developer_id
//	managers    PUT /agents/:did/card, POST /agents/:did/credentials (the agent, its developer,
//	            accepted members of its organisation); DELETE /agents/:did (the same, or admin)
//	admin       GET /admin/registry/stats
//
// Every mutating route honours Idempotency-Key (stored responses are
// encrypted); POST /auth/token and /auth/revoke do not (they change no
// business state and must not store tokens).
func (h *Handler) Mount(v1 *gin.RouterGroup) {
	idem := api.Idempotency(h.idem, false, h.now)
	addr := h.limitByAddress()

	v1.POST("/developers", addr, requireLongIdempotencyKey(), idem, h.signUp)
	v1.POST("/auth/token", addr, h.token)
	v1.GET("/auth/jwks.json", h.jwks)
	v1.POST("/agents", addr, bootstrapPrincipal(), idem, h.createAgent)

	p := v1.Group("", h.authMW)
	anyScope := api.RequireScope(registry.ScopeAgent, registry.ScopeDeveloper, registry.ScopeAdmin)
	dev := api.RequireScope(registry.ScopeDeveloper)

	p.POST("/auth/revoke", anyScope, h.revoke)
	p.GET("/agents", anyScope, h.listAgents)
	p.GET("/agents/:did", anyScope, h.getAgent)
	p.GET("/agents/:did/card", anyScope, h.getCard)
	p.GET("/agents/:did/reputation-bond", anyScope, h.getBond)
	p.PUT("/agents/:did/card", api.RequireScope(registry.ScopeAgent, registry.ScopeDeveloper), idem, h.publishCard)
	p.POST("/agents/:did/credentials", api.RequireScope(registry.ScopeAgent, registry.ScopeDeveloper), idem, h.rotateCredentials)
	p.DELETE("/agents/:did", anyScope, idem, h.deregister)

	p.GET("/developers/me", dev, h.me)
	p.POST("/developers/me/api-key", dev, idem, h.rotateAPIKey)
	p.POST("/bootstrap-tokens", dev, idem, h.createBootstrapToken)
	p.POST("/organisations", dev, idem, h.createOrganisation)
	p.GET("/organisations/:id", dev, h.getOrganisation)
	p.POST("/organisations/:id/members", dev, idem, h.inviteMember)
	p.POST("/organisations/:id/members/accept", dev, idem, h.acceptInvitation)
	p.DELETE("/organisations/:id/members/:developer_id", dev, idem, h.removeMember)

	p.GET("/admin/registry/stats", api.RequireScope(registry.ScopeAdmin), h.stats)
}

// AdminCredentials are a new admin client's credentials, shown once.
type AdminCredentials struct {
	ID           uuid.UUID
	ClientID     string
	ClientSecret string
}

// CreateAdminClient creates an operator credential with the admin scope and
// returns it once; it is the bootstrap path for admins (call it from the
// CLI, e.g. `theprotocol admin create-client -name ops`, and hand the
// output to the operator). Exchange it at POST /auth/token with
// grant_type=client_credentials.
func CreateAdminClient(ctx context.Context, store *registrystore.Store, name string, now time.Time) (AdminCredentials, error) {
	if err := registry.ValidateText("name", name, 1, 200); err != nil {
		return AdminCredentials{}, err
	}
	id := uuid.New()
	clientID := auth.NewHandle(auth.PrefixAdminClientID)
	secret, hash := auth.NewSecret(auth.PrefixClientSecret)
	if _, err := store.CreateAdminClient(ctx, id, name, clientID, hash, now); err != nil {
		return AdminCredentials{}, err
	}
	return AdminCredentials{ID: id, ClientID: clientID, ClientSecret: secret}, nil
}

// --- middleware ---------------------------------------------------------------

// limitByAddress rate-limits by the client's address: the TCP peer, or,
// on a connection from one of the engine's trusted proxies
// (api.EngineOptions.TrustedProxies), the address that proxy put in
// X-Forwarded-For. With no trusted proxy the header is ignored: anyone
// could otherwise pick a fresh bucket per request.
func (h *Handler) limitByAddress() gin.HandlerFunc {
	return func(c *gin.Context) {
		if !h.allow(c, h.addrLim, "ip:"+c.ClientIP()) {
			return
		}
		c.Next()
	}
}

// allow consumes one request from key's bucket; on refusal it writes 429
// with Retry-After and returns false.
func (h *Handler) allow(c *gin.Context, l *auth.Limiter, key string) bool {
	if h.o.RateLimits.Disabled {
		return true
	}
	ok, wait := l.Allow(key)
	if ok {
		return true
	}
	secs := int64((wait + time.Second - 1) / time.Second)
	c.Header("Retry-After", strconv.FormatInt(secs, 10))
	api.WriteError(c, apperr.New(apperr.RateLimited, "too many requests; retry in %d s", secs))
	return false
}

// MinSignUpIdempotencyKeyLen: sign-up is unauthenticated, so its
// idempotency scope is shared by everyone; a replay returns the API key. A
// long (≥ 128-bit random, e.g. a UUID) key makes a replay by anyone but the
// original caller infeasible.
const MinSignUpIdempotencyKeyLen = 32

func requireLongIdempotencyKey() gin.HandlerFunc {
	return func(c *gin.Context) {
		if k := c.GetHeader(api.HeaderIdempotencyKey); k != "" && len(k) < MinSignUpIdempotencyKeyLen {
			api.WriteError(c, apperr.New(apperr.Invalid, "%s on sign-up must be at least %d characters (use a random UUID)", api.HeaderIdempotencyKey, MinSignUpIdempotencyKeyLen))
			return
		}
		c.Next()
	}
}

const bootstrapHashKey = "theprotocol.registry.bootstrap_hash"

// bootstrapPrincipal reads the bootstrap token of POST /agents and scopes
// idempotency to it ("bootstrap:" + a prefix of its hash), so only the
// holder of the token can replay the creation's response.
func bootstrapPrincipal() gin.HandlerFunc {
	return func(c *gin.Context) {
		tok, present, err := auth.BearerToken(c)
		if err == nil && !present {
			err = apperr.New(apperr.Unauthenticated, "agent creation needs a bootstrap token (Authorization: Bearer tpb_…)")
		}
		if err == nil && !auth.ValidSecretShape(tok, auth.PrefixBootstrap) {
			err = registrystore.ErrBootstrapInvalid
		}
		if err != nil {
			c.Header("WWW-Authenticate", `Bearer realm="theprotocol", error="invalid_token"`)
			api.WriteError(c, err)
			return
		}
		hash := auth.HashSecret(tok)
		c.Set(bootstrapHashKey, hash)
		sum := sha256.Sum256(append([]byte("idempotency-scope:"), hash...))
		api.SetPrincipal(c, api.Principal{Subject: "bootstrap:" + hex.EncodeToString(sum[:16])})
		c.Next()
	}
}
