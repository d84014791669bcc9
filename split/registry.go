package split

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/theprotocol-dev/theprotocol/api"
	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/registry"
)

// AgentLookup reads an agent from the registry (*registrystore.Store).
type AgentLookup interface {
	Agent(ctx context.Context, did string) (registry.Agent, error)
}

// PrincipalAnswer is an authenticated token's principal.
type PrincipalAnswer struct {
	Subject  string   `json:"subject"`
	Scopes   []string `json:"scopes"`
	Registry string   `json:"registry"`
	TokenID  string   `json:"token_id"`
}

// AgentAnswer is an agent's state as the bond check needs it.
type AgentAnswer struct {
	DID    string `json:"did"`
	Status string `json:"status"`
}

// RegistryServer serves a registry's token checks and agent states to
// its other processes (the TEG's public API and bond workflow).
type RegistryServer struct {
	// Auth is the registry's own authentication middleware (signature,
	// expiry, revocation, credential generation): a token passes here
	// exactly when it passes on the registry's public API.
	Auth   gin.HandlerFunc
	Agents AgentLookup
	Self   spiffeid.ID
}

// Register mounts the endpoints on the mTLS listener's mux.
func (s *RegistryServer) Register(mux *http.ServeMux) {
	e := gin.New()
	e.Use(gin.Recovery())
	e.POST(PathAuthenticate, func(c *gin.Context) {
		if !admitted(c.Writer, c.Request, s.Self) {
			c.Abort()
		}
	}, s.Auth, func(c *gin.Context) {
		p, ok := api.PrincipalFrom(c)
		if !ok {
			api.WriteError(c, apperr.New(apperr.Unauthenticated, "authentication required"))
			return
		}
		c.JSON(http.StatusOK, PrincipalAnswer{Subject: p.Subject, Scopes: p.Scopes, Registry: p.Registry, TokenID: p.TokenID})
	})
	mux.Handle("POST "+PathAuthenticate, e)
	mux.HandleFunc("GET "+PathAgents+"{did}", func(w http.ResponseWriter, r *http.Request) {
		if !admitted(w, r, s.Self) {
			return
		}
		did := r.PathValue("did")
		if !registry.ValidDID(did) {
			writeErr(w, apperr.New(apperr.Invalid, "not a DID: %q", did))
			return
		}
		a, err := s.Agents.Agent(r.Context(), did)
		if err != nil {
			writeErr(w, apperr.WrapUncoded(err, apperr.Unavailable, "the registry is unavailable; retry later"))
			return
		}
		writeJSON(w, http.StatusOK, AgentAnswer{DID: a.DID, Status: a.Status})
	})
}

// RegistryClient is a TEG's registry when the registry runs in another
// process: it authenticates the TEG's public API callers and answers the
// bond workflow's agent checks.
type RegistryClient struct{ caller }

// NewRegistryClient calls the registry whose mTLS listener is at base.
func NewRegistryClient(base string) (*RegistryClient, error) {
	if err := checkBase(base); err != nil {
		return nil, err
	}
	c := &RegistryClient{}
	c.base = base
	return c, nil
}

// Agent implements AgentLookup: NotFound only when the registry says the
// agent does not exist; a registry it cannot reach is Unavailable, never
// a missing agent (the bond workflow voids the bond of a missing one).
func (c *RegistryClient) Agent(ctx context.Context, did string) (registry.Agent, error) {
	if !registry.ValidDID(did) {
		return registry.Agent{}, apperr.New(apperr.Invalid, "not a DID: %q", did)
	}
	var out AgentAnswer
	if err := c.do(ctx, "registry", http.MethodGet, PathAgents+did, nil, nil, &out); err != nil {
		return registry.Agent{}, err
	}
	if out.DID != did {
		return registry.Agent{}, apperr.New(apperr.Unavailable, "the registry answered for agent %q, not %q", out.DID, did)
	}
	return registry.Agent{DID: out.DID, Status: out.Status}, nil
}

// Authenticate is the gin middleware of the TEG's public API: the bearer
// token goes to the registry, which checks it as its own API does; the
// answer's principal is set (api.Principal) for api.RequireScope.
func (c *RegistryClient) Authenticate(g *gin.Context) {
	h := g.GetHeader("Authorization")
	if h == "" {
		unauthorized(g, apperr.New(apperr.Unauthenticated, "this route needs a bearer token (Authorization: Bearer <token>)"))
		return
	}
	var out PrincipalAnswer
	if err := c.do(g.Request.Context(), "registry", http.MethodPost, PathAuthenticate, http.Header{"Authorization": {h}}, nil, &out); err != nil {
		unauthorized(g, err)
		return
	}
	api.SetPrincipal(g, api.Principal{Subject: out.Subject, Scopes: out.Scopes, Registry: out.Registry, TokenID: out.TokenID})
	g.Next()
}

func unauthorized(g *gin.Context, err error) {
	if apperr.CodeOf(err) == apperr.Unauthenticated {
		g.Header("WWW-Authenticate", `Bearer realm="theprotocol", error="invalid_token"`)
	}
	api.WriteError(g, err)
}
