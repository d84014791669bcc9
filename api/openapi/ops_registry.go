package openapi

import (
	"net/http"

	"github.com/theprotocol-dev/theprotocol/api/registryapi"
	"github.com/theprotocol-dev/theprotocol/auth"
)

// JWKS is GET /auth/jwks.json: the registry's public keys, which verify
// its access tokens and its payment tokens.
type JWKS struct {
	Keys []auth.JWK `json:"keys"`
}

func init() {
	const v1, tag = "/api/v1", "registry"
	Register(
		Operation{Method: http.MethodPost, Path: v1 + "/developers", ID: "signUp", Tag: tag, Idem: IdemRequired,
			Summary: "Sign up a developer (Idempotency-Key of at least 32 characters)", Request: registryapi.SignUpRequest{}, Status: 201, Response: registryapi.SignUpResponse{}},
		Operation{Method: http.MethodPost, Path: v1 + "/auth/token", ID: "issueToken", Tag: tag,
			Summary: "Exchange client credentials or an API key for an access token (JSON or form)", Request: registryapi.TokenRequest{}, Response: registryapi.TokenResponse{}},
		Operation{Method: http.MethodGet, Path: v1 + "/auth/jwks.json", ID: "getJWKS", Tag: tag,
			Summary: "The registry's public signing keys (access and payment tokens)", Response: JWKS{}},
		Operation{Method: http.MethodPost, Path: v1 + "/auth/revoke", ID: "revokeToken", Tag: tag, Auth: AuthBearer,
			Summary: "Revoke the presented access token", Response: struct {
				Revoked string `json:"revoked"`
			}{}},
		Operation{Method: http.MethodPost, Path: v1 + "/agents", ID: "createAgent", Tag: tag, Auth: AuthBootstrap, Idem: IdemRequired,
			Summary: "Register an agent; its client credentials are returned exactly once", Request: registryapi.CreateAgentRequest{}, Status: 201, Response: registryapi.AgentCredentialsResponse{}},
		Operation{Method: http.MethodGet, Path: v1 + "/agents", ID: "listAgents", Tag: tag, Auth: AuthBearer,
			Query:   map[string]string{"skill": "only agents whose card lists this skill", "after": "cursor", "limit": "page size"},
			Summary: "List published agent cards", Response: registryapi.CardListResponse{}},
		Operation{Method: http.MethodGet, Path: v1 + "/agents/{did}", ID: "getAgent", Tag: tag, Auth: AuthBearer,
			Summary: "An agent", Response: registryapi.AgentResponse{}},
		Operation{Method: http.MethodDelete, Path: v1 + "/agents/{did}", ID: "deregisterAgent", Tag: tag, Auth: AuthBearer, Idem: IdemRequired,
			Summary: "Deregister an agent", Response: registryapi.AgentResponse{}},
		Operation{Method: http.MethodGet, Path: v1 + "/agents/{did}/card", ID: "getAgentCard", Tag: tag, Auth: AuthBearer,
			Summary: "An agent's card (skills, endpoint, prices)", Response: registryapi.CardResponse{}},
		Operation{Method: http.MethodPut, Path: v1 + "/agents/{did}/card", ID: "publishAgentCard", Tag: tag, Auth: AuthBearer, Idem: IdemRequired,
			Summary: "Publish an agent's card", Response: registryapi.CardResponse{}},
		Operation{Method: http.MethodGet, Path: v1 + "/agents/{did}/reputation-bond", ID: "getReputationBond", Tag: tag, Auth: AuthBearer,
			Summary: "An agent's reputation bond", Response: registryapi.BondStatusResponse{}},
		Operation{Method: http.MethodPost, Path: v1 + "/agents/{did}/credentials", ID: "rotateAgentCredentials", Tag: tag, Auth: AuthBearer, Idem: IdemRequired,
			Summary: "Rotate an agent's client secret (older tokens stop working)", Response: registryapi.AgentCredentialsResponse{}},
		Operation{Method: http.MethodGet, Path: v1 + "/developers/me", ID: "getDeveloper", Tag: tag, Auth: AuthBearer,
			Summary: "The calling developer", Response: registryapi.DeveloperResponse{}},
		Operation{Method: http.MethodPost, Path: v1 + "/developers/me/api-key", ID: "rotateAPIKey", Tag: tag, Auth: AuthBearer, Idem: IdemRequired,
			Summary: "Rotate the developer's API key", Response: registryapi.APIKeyResponse{}},
		Operation{Method: http.MethodPost, Path: v1 + "/bootstrap-tokens", ID: "createBootstrapToken", Tag: tag, Auth: AuthBearer, Idem: IdemRequired,
			Summary: "A one-time token that registers one agent", Request: registryapi.BootstrapTokenRequest{}, Status: 201, Response: registryapi.BootstrapTokenResponse{}},
		Operation{Method: http.MethodPost, Path: v1 + "/organisations", ID: "createOrganisation", Tag: tag, Auth: AuthBearer, Idem: IdemRequired,
			Summary: "Create an organisation", Request: registryapi.OrganisationRequest{}, Status: 201, Response: registryapi.OrganisationResponse{}},
		Operation{Method: http.MethodGet, Path: v1 + "/organisations/{id}", ID: "getOrganisation", Tag: tag, Auth: AuthBearer,
			Summary: "An organisation and its members", Response: registryapi.OrganisationResponse{}},
		Operation{Method: http.MethodPost, Path: v1 + "/organisations/{id}/members", ID: "inviteMember", Tag: tag, Auth: AuthBearer, Idem: IdemRequired,
			Summary: "Invite a developer", Request: registryapi.InviteRequest{}, Status: 201, Response: registryapi.MemberResponse{}},
		Operation{Method: http.MethodPost, Path: v1 + "/organisations/{id}/members/accept", ID: "acceptInvitation", Tag: tag, Auth: AuthBearer, Idem: IdemRequired,
			Summary: "Accept an invitation", Response: registryapi.MemberResponse{}},
		Operation{Method: http.MethodDelete, Path: v1 + "/organisations/{id}/members/{developer_id}", ID: "removeMember", Tag: tag, Auth: AuthBearer, Idem: IdemRequired,
			Summary: "Remove a member", Response: registryapi.MemberResponse{}},
		Operation{Method: http.MethodGet, Path: v1 + "/admin/registry/stats", ID: "registryStats", Tag: "admin", Auth: AuthBearer,
			Summary: "Registry counters (admin)"},
	)
}
