package registry

import (
	"slices"
	"strings"

	"github.com/theprotocol-dev/theprotocol/apperr"
)

// Scopes a bearer token can carry (the same strings as api.Scope*). A token
// carries exactly the scope of its subject's kind: agents get "agent",
// developers "developer", admin clients "admin".
const (
	ScopeAgent     = "agent"
	ScopeDeveloper = "developer"
	ScopeAdmin     = "admin"
)

// Claims are the payload of a registry bearer token (a JWT signed with the
// registry's Ed25519 key, see auth). Times are Unix seconds.
type Claims struct {
	Issuer    string `json:"iss"`
	Subject   string `json:"sub"` // DID, dev:<uuid> or admin:<uuid>
	Audience  string `json:"aud"`
	IssuedAt  int64  `json:"iat"`
	NotBefore int64  `json:"nbf"`
	ExpiresAt int64  `json:"exp"`
	ID        string `json:"jti"`   // unique token ID (revocation, audit)
	Scope     string `json:"scope"` // space-separated scopes (RFC 8693 style)
	Registry  string `json:"reg"`   // issuing registry
	Frame     string `json:"frm"`   // issuing registry's frame
	// Generation is the credential generation the token was issued under
	// (agent credential_generation, developer api_key_generation). Rotating
	// the credential bumps it, so older tokens fail the per-request check.
	Generation int64 `json:"gen"`
}

// ScopeList splits Scope.
func (c Claims) ScopeList() []string { return strings.Fields(c.Scope) }

// ScopeForKind is the one scope a principal of kind receives.
func ScopeForKind(kind string) (string, bool) {
	switch kind {
	case KindAgent:
		return ScopeAgent, true
	case KindDeveloper:
		return ScopeDeveloper, true
	case KindAdmin:
		return ScopeAdmin, true
	}
	return "", false
}

// MaxScopes bounds the scope list of a token.
const MaxScopes = 4

// Validate checks the claims' structure (not time or signature): known
// subject kind, scopes that match it, an ID, sane times. It returns
// apperr.Unauthenticated: a token whose claims are wrong is not a credential.
func (c Claims) Validate() error {
	kind, _, err := ParseSubject(c.Subject)
	if err != nil {
		return apperr.New(apperr.Unauthenticated, "token subject is malformed")
	}
	if c.ID == "" || len(c.ID) > 64 {
		return apperr.New(apperr.Unauthenticated, "token has no valid id")
	}
	scopes := c.ScopeList()
	if len(scopes) == 0 || len(scopes) > MaxScopes {
		return apperr.New(apperr.Unauthenticated, "token has no valid scope")
	}
	want, _ := ScopeForKind(kind)
	for _, s := range scopes {
		if s != want {
			return apperr.New(apperr.Unauthenticated, "token scope %q does not match its subject", s)
		}
	}
	if c.IssuedAt <= 0 || c.ExpiresAt <= c.IssuedAt || c.NotBefore > c.ExpiresAt {
		return apperr.New(apperr.Unauthenticated, "token times are inconsistent")
	}
	if kind != KindAdmin && c.Generation < 1 {
		return apperr.New(apperr.Unauthenticated, "token has no credential generation")
	}
	return nil
}

// HasScope reports whether the claims carry scope.
func (c Claims) HasScope(scope string) bool { return slices.Contains(c.ScopeList(), scope) }

// ErrTokenRevoked is the answer for a verified token that is no longer
// valid: revoked by ID, its credential rotated, or its subject deregistered,
// suspended or gone. One message for all, so it reveals nothing more.
var ErrTokenRevoked = apperr.New(apperr.Unauthenticated, "bearer token has been revoked")
