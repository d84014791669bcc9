package auth

import (
	"context"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/theprotocol-dev/theprotocol/api"
	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/registry"
)

// StateChecker decides whether verified claims are still good: the subject
// exists and is active, the credential generation is current (rotation
// revokes older tokens at once) and the token ID was not revoked. It returns
// apperr.Unauthenticated for a dead token and another code (Unavailable)
// when it cannot tell. db/registrystore implements it with one indexed
// query per request.
type StateChecker interface {
	CheckToken(ctx context.Context, c registry.Claims) error
}

// ErrRevoked is the StateChecker's answer for a token that is no longer
// valid (revoked, credential rotated, subject gone or suspended).
var ErrRevoked = registry.ErrTokenRevoked

const claimsKey = "theprotocol.auth.claims"

// ClaimsFrom returns the verified claims of the request's token.
func ClaimsFrom(c *gin.Context) (registry.Claims, bool) {
	v, ok := c.Get(claimsKey)
	if !ok {
		return registry.Claims{}, false
	}
	cl, ok := v.(registry.Claims)
	return cl, ok
}

// BearerToken extracts the token of an "Authorization: Bearer <token>"
// header. ok is false when the header is absent; err is set when it is
// present but not a bearer token.
func BearerToken(c *gin.Context) (token string, ok bool, err error) {
	h := c.GetHeader("Authorization")
	if h == "" {
		return "", false, nil
	}
	scheme, tok, found := strings.Cut(h, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", true, apperr.New(apperr.Unauthenticated, "Authorization header must be \"Bearer <token>\"")
	}
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return "", true, apperr.New(apperr.Unauthenticated, "Authorization header must be \"Bearer <token>\"")
	}
	return tok, true, nil
}

// Middleware authenticates every request of the routes it guards: it
// requires a bearer token, verifies it with v, asks checker whether it is
// still valid, and sets the api.Principal (and the claims, see ClaimsFrom).
// Failures are 401 with a WWW-Authenticate header; scope checks (403) are
// api.RequireScope's job, mounted after this. checker may be nil only in
// tests that need no revocation.
func Middleware(v *Verifier, checker StateChecker) gin.HandlerFunc {
	return func(c *gin.Context) {
		tok, present, err := BearerToken(c)
		if err == nil && !present {
			err = apperr.New(apperr.Unauthenticated, "this route needs a bearer token (Authorization: Bearer <token>)")
		}
		if err != nil {
			unauthorized(c, err)
			return
		}
		claims, err := v.Verify(tok)
		if err != nil {
			unauthorized(c, err)
			return
		}
		if checker != nil {
			if err := checker.CheckToken(c.Request.Context(), claims); err != nil {
				unauthorized(c, err)
				return
			}
		}
		c.Set(claimsKey, claims)
		api.SetPrincipal(c, api.Principal{
			Subject: claims.Subject, Scopes: claims.ScopeList(), Registry: claims.Registry, TokenID: claims.ID,
		})
		c.Next()
	}
}

func unauthorized(c *gin.Context, err error) {
	if apperr.CodeOf(err) == apperr.Unauthenticated {
		c.Header("WWW-Authenticate", `Bearer realm="theprotocol", error="invalid_token"`)
	}
	api.WriteError(c, err)
}
