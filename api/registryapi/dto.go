package registryapi

import (
	"encoding/base64"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/registry"
)

// Request DTOs validate themselves: DecodeJSON checks syntax and types,
// Validate checks content. Both are fuzzed (fuzz_test.go).

// SignUpRequest is POST /developers.
type SignUpRequest struct {
	Name  string `json:"name"`
	Email string `json:"email"`
}

// Validate checks the sign-up fields.
func (r SignUpRequest) Validate() error {
	if err := registry.ValidateText("name", r.Name, 1, registry.MaxDeveloperNameBytes); err != nil {
		return err
	}
	return registry.ValidateEmail(r.Email)
}

// SignUpResponse carries the API key: the only time it is ever shown.
type SignUpResponse struct {
	DeveloperID string    `json:"developer_id"`
	AccountID   string    `json:"account_id"`
	Name        string    `json:"name"`
	Email       string    `json:"email"`
	APIKey      string    `json:"api_key"`
	APIKeyID    string    `json:"api_key_id"`
	CreatedAt   time.Time `json:"created_at"`
}

// DeveloperResponse is a developer without secrets.
type DeveloperResponse struct {
	DeveloperID      string    `json:"developer_id"`
	AccountID        string    `json:"account_id"`
	Name             string    `json:"name"`
	Email            string    `json:"email"`
	APIKeyID         string    `json:"api_key_id"`
	APIKeyGeneration int64     `json:"api_key_generation"`
	CreatedAt        time.Time `json:"created_at"`
}

func developerDTO(d registry.Developer) DeveloperResponse {
	return DeveloperResponse{DeveloperID: d.ID.String(), AccountID: d.Subject(), Name: d.Name, Email: d.Email,
		APIKeyID: d.APIKeyID, APIKeyGeneration: d.APIKeyGeneration, CreatedAt: d.CreatedAt}
}

// APIKeyResponse carries a rotated API key, shown once.
type APIKeyResponse struct {
	DeveloperID string `json:"developer_id"`
	APIKey      string `json:"api_key"`
	APIKeyID    string `json:"api_key_id"`
	Generation  int64  `json:"api_key_generation"`
}

// BootstrapTokenRequest is POST /bootstrap-tokens; both fields optional.
type BootstrapTokenRequest struct {
	OrganisationID string `json:"organisation_id,omitempty"`
	TTLSeconds     int64  `json:"ttl_seconds,omitempty"`
}

// Validate checks the organisation ID and the TTL (at most
// registry.MaxBootstrapTTL).
func (r BootstrapTokenRequest) Validate() error {
	if r.OrganisationID != "" {
		if _, err := parseUUID("organisation_id", r.OrganisationID); err != nil {
			return err
		}
	}
	if r.TTLSeconds < 0 || time.Duration(r.TTLSeconds)*time.Second > registry.MaxBootstrapTTL {
		return apperr.New(apperr.Invalid, "ttl_seconds must be within 1..%d", int64(registry.MaxBootstrapTTL/time.Second))
	}
	return nil
}

// BootstrapTokenResponse carries the bootstrap token, shown once.
type BootstrapTokenResponse struct {
	BootstrapToken string    `json:"bootstrap_token"`
	ExpiresAt      time.Time `json:"expires_at"`
	OrganisationID string    `json:"organisation_id,omitempty"`
}

// CreateAgentRequest is POST /agents (authenticated by the bootstrap token);
// the initial card is optional.
type CreateAgentRequest struct {
	Card *registry.AgentCard `json:"card,omitempty"`
}

// Validate checks the card, if any.
func (r CreateAgentRequest) Validate() error {
	if r.Card != nil {
		return r.Card.Validate()
	}
	return nil
}

// AgentCredentialsResponse carries client credentials: shown once, at
// creation and at each rotation.
type AgentCredentialsResponse struct {
	DID                  string        `json:"did"`
	HomeRegistry         string        `json:"home_registry"`
	Frame                string        `json:"frame"`
	ClientID             string        `json:"client_id"`
	ClientSecret         string        `json:"client_secret"`
	CredentialGeneration int64         `json:"credential_generation"`
	Card                 *CardResponse `json:"card,omitempty"`
}

// AgentResponse is an agent's public record.
type AgentResponse struct {
	DID            string     `json:"did"`
	HomeRegistry   string     `json:"home_registry"`
	Frame          string     `json:"frame"`
	Status         string     `json:"status"`
	DeveloperID    string     `json:"developer_id"`
	OrganisationID string     `json:"organisation_id,omitempty"`
	CreatedAt      time.Time  `json:"created_at"`
	DeregisteredAt *time.Time `json:"deregistered_at,omitempty"`
}

func agentDTO(a registry.Agent) AgentResponse {
	r := AgentResponse{DID: a.DID, HomeRegistry: a.HomeRegistry, Frame: a.Frame, Status: a.Status,
		DeveloperID: a.DeveloperID.String(), CreatedAt: a.CreatedAt, DeregisteredAt: a.DeregisteredAt}
	if a.OrganisationID != nil {
		r.OrganisationID = a.OrganisationID.String()
	}
	return r
}

// CardResponse is a published card with its version.
type CardResponse struct {
	DID         string             `json:"did"`
	Version     int64              `json:"version"`
	PublishedAt time.Time          `json:"published_at"`
	Card        registry.AgentCard `json:"card"`
}

func cardDTO(pc registry.PublishedCard) CardResponse {
	return CardResponse{DID: pc.DID, Version: pc.Version, PublishedAt: pc.PublishedAt, Card: pc.Card}
}

// CardListResponse is a page of cards; NextCursor is empty on the last page.
type CardListResponse struct {
	Items      []CardResponse `json:"items"`
	NextCursor string         `json:"next_cursor,omitempty"`
}

// TokenRequest is POST /auth/token, as JSON or as a form.
//
//	grant_type=client_credentials&client_id=tpc_…&client_secret=tps_…  (agents; admin clients use tpadm_… IDs)
//	grant_type=api_key&api_key=tpk_…                                    (developers)
type TokenRequest struct {
	GrantType    string `json:"grant_type"`
	ClientID     string `json:"client_id,omitempty"`
	ClientSecret string `json:"client_secret,omitempty"`
	APIKey       string `json:"api_key,omitempty"`
}

// Grant types of the token endpoint.
const (
	GrantClientCredentials = "client_credentials"
	GrantAPIKey            = "api_key"
)

// Validate checks that the grant's fields are present, and only those.
// Shapes of the secrets are checked by the handler (a malformed secret is a
// failed login, not a bad request).
func (r TokenRequest) Validate() error {
	switch r.GrantType {
	case GrantClientCredentials:
		if r.ClientID == "" || r.ClientSecret == "" {
			return apperr.New(apperr.Invalid, "grant_type client_credentials needs client_id and client_secret")
		}
		if r.APIKey != "" {
			return apperr.New(apperr.Invalid, "api_key is not allowed with grant_type client_credentials")
		}
	case GrantAPIKey:
		if r.APIKey == "" {
			return apperr.New(apperr.Invalid, "grant_type api_key needs api_key")
		}
		if r.ClientID != "" || r.ClientSecret != "" {
			return apperr.New(apperr.Invalid, "client_id and client_secret are not allowed with grant_type api_key")
		}
	case "":
		return apperr.New(apperr.Invalid, "field \"grant_type\" is required")
	default:
		return apperr.New(apperr.Invalid, "grant_type must be client_credentials or api_key")
	}
	for name, v := range map[string]string{"client_id": r.ClientID, "client_secret": r.ClientSecret, "api_key": r.APIKey} {
		if len(v) > 256 {
			return apperr.New(apperr.Invalid, "%s is too long", name)
		}
	}
	return nil
}

// TokenResponse is the OAuth-style token response.
type TokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope"`
}

// OrganisationRequest is POST /organisations.
type OrganisationRequest struct {
	Name string `json:"name"`
}

// Validate checks the name.
func (r OrganisationRequest) Validate() error {
	return registry.ValidateText("name", r.Name, 1, registry.MaxOrgNameBytes)
}

// InviteRequest is POST /organisations/{id}/members.
type InviteRequest struct {
	DeveloperID string `json:"developer_id"`
	Role        string `json:"role,omitempty"` // owner or member (default)
}

// Validate checks the developer ID and role.
func (r InviteRequest) Validate() error {
	if r.DeveloperID == "" {
		return apperr.New(apperr.Invalid, "field \"developer_id\" is required")
	}
	if _, err := parseUUID("developer_id", r.DeveloperID); err != nil {
		return err
	}
	switch r.Role {
	case "", registry.RoleMember, registry.RoleOwner:
		return nil
	}
	return apperr.New(apperr.Invalid, "role must be owner or member")
}

// OrganisationResponse is an organisation with its members (members only).
type OrganisationResponse struct {
	ID        string           `json:"organisation_id"`
	Name      string           `json:"name"`
	CreatedBy string           `json:"created_by"`
	CreatedAt time.Time        `json:"created_at"`
	Members   []MemberResponse `json:"members,omitempty"`
}

// MemberResponse is a membership or pending invitation.
type MemberResponse struct {
	DeveloperID string     `json:"developer_id"`
	Role        string     `json:"role"`
	InvitedBy   string     `json:"invited_by"`
	InvitedAt   time.Time  `json:"invited_at"`
	AcceptedAt  *time.Time `json:"accepted_at,omitempty"`
}

func memberDTO(m registry.Member) MemberResponse {
	return MemberResponse{DeveloperID: m.DeveloperID.String(), Role: m.Role, InvitedBy: m.InvitedBy.String(), InvitedAt: m.InvitedAt, AcceptedAt: m.AcceptedAt}
}

func orgDTO(o registry.Organisation, members []registry.Member) OrganisationResponse {
	r := OrganisationResponse{ID: o.ID.String(), Name: o.Name, CreatedBy: o.CreatedBy.String(), CreatedAt: o.CreatedAt}
	for _, m := range members {
		r.Members = append(r.Members, memberDTO(m))
	}
	return r
}

// parseUUID accepts only the canonical lowercase form.
func parseUUID(field, s string) (uuid.UUID, error) {
	id, err := uuid.Parse(s)
	if err != nil || id.String() != s {
		return uuid.Nil, apperr.New(apperr.Invalid, "%s must be a lowercase UUID", field)
	}
	return id, nil
}

// Cursors are opaque to clients: base64url of the last DID of a page.
func encodeCursor(did string) string { return base64.RawURLEncoding.EncodeToString([]byte(did)) }

func decodeCursor(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	if len(s) > 128 {
		return "", apperr.New(apperr.Invalid, "cursor is invalid")
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || !registry.ValidDID(string(raw)) {
		return "", apperr.New(apperr.Invalid, "cursor is invalid")
	}
	return string(raw), nil
}

// parseLimit reads the page size: default registry.DefaultPageSize, values
// above registry.MaxPageSize are capped, non-numbers and < 1 are 400.
func parseLimit(s string) (int, error) {
	if s == "" {
		return registry.DefaultPageSize, nil
	}
	if len(s) > 6 || strings.TrimLeft(s, "0123456789") != "" {
		return 0, apperr.New(apperr.Invalid, "limit must be a positive integer")
	}
	n := 0
	for _, ch := range s {
		n = n*10 + int(ch-'0')
	}
	if n < 1 {
		return 0, apperr.New(apperr.Invalid, "limit must be a positive integer")
	}
	if n > registry.MaxPageSize {
		n = registry.MaxPageSize
	}
	return n, nil
}

// BondStatusResponse is GET /agents/{did}/reputation-bond. Amounts are base
// units (1 AVT = 10^8). State is locked, matured, forfeited or voided;
// matures_no_earlier_than, checks and last_reason come from the running
// BondMaturation workflow.
type BondStatusResponse struct {
	AgentDID             string     `json:"agent_did"`
	State                string     `json:"state"`
	AmountUnits          int64      `json:"amount_units"`
	LockedUnits          int64      `json:"locked_units"`
	LockedAt             time.Time  `json:"locked_at"`
	SettledAt            *time.Time `json:"settled_at,omitempty"`
	MaturesNoEarlierThan *time.Time `json:"matures_no_earlier_than,omitempty"`
	Checks               int        `json:"checks"`
	LastReason           string     `json:"last_reason,omitempty"`
}
