package api

import (
	"slices"

	"github.com/gin-gonic/gin"

	"github.com/theprotocol-dev/theprotocol/apperr"
)

// Scopes carried by bearer tokens.
const (
	ScopeAgent     = "agent"
	ScopeDeveloper = "developer"
	ScopeAdmin     = "admin"
)

// Principal is the authenticated caller of a request, set by the registry's
// authentication middleware.
type Principal struct {
	// Subject identifies the caller: an agent DID, "dev:<id>" for a
	// developer, "admin:<id>" for an operator.
	Subject  string
	Scopes   []string
	Registry string // the registry that issued the credential
	TokenID  string // for revocation and audit; never the token itself
}

// HasScope reports whether p carries scope.
func (p Principal) HasScope(scope string) bool { return slices.Contains(p.Scopes, scope) }

const principalKey = "theprotocol.principal"

// SetPrincipal stores p on the request context.
func SetPrincipal(c *gin.Context, p Principal) { c.Set(principalKey, p) }

// PrincipalFrom returns the authenticated caller, if any.
func PrincipalFrom(c *gin.Context) (Principal, bool) {
	v, ok := c.Get(principalKey)
	if !ok {
		return Principal{}, false
	}
	p, ok := v.(Principal)
	return p, ok
}

// RequireScope rejects requests without an authenticated principal (401) or
// without one of scopes (403). Mount it after the authentication middleware.
func RequireScope(scopes ...string) gin.HandlerFunc {
	return func(c *gin.Context) {
		p, ok := PrincipalFrom(c)
		if !ok {
			WriteError(c, apperr.New(apperr.Unauthenticated, "authentication required"))
			return
		}
		for _, s := range scopes {
			if p.HasScope(s) {
				c.Next()
				return
			}
		}
		WriteError(c, apperr.New(apperr.Forbidden, "this route needs scope %v", scopes))
	}
}
