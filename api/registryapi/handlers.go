package registryapi

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/theprotocol-dev/theprotocol/api"
	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/auth"
	"github.com/theprotocol-dev/theprotocol/db/registrystore"
	"github.com/theprotocol-dev/theprotocol/registry"
)

type validator interface{ Validate() error }

// decode strictly decodes a required JSON body and validates it.
func decode(c *gin.Context, dst validator) error {
	if err := api.DecodeJSON(c, dst); err != nil {
		return err
	}
	return dst.Validate()
}

// decodeOptional is decode for routes whose body may be empty (= {}).
func decodeOptional(c *gin.Context, dst validator) error {
	body, err := readBody(c)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) > 0 {
		if err := checkJSONContentType(c); err != nil {
			return err
		}
		if err := api.DecodeJSONBytes(body, dst); err != nil {
			return err
		}
	}
	return dst.Validate()
}

func readBody(c *gin.Context) ([]byte, error) {
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, apperr.New(apperr.TooLarge, "request body larger than %d bytes", tooLarge.Limit)
		}
		return nil, apperr.Wrap(err, apperr.Invalid, "could not read request body")
	}
	return body, nil
}

func checkJSONContentType(c *gin.Context) error {
	if ct := c.GetHeader("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return apperr.New(apperr.Invalid, "Content-Type must be application/json")
		}
	}
	return nil
}

func fail(c *gin.Context, err error) { api.WriteError(c, err) }

// developerID returns the calling developer's ID (routes guarded by the
// developer scope).
func developerID(c *gin.Context) (uuid.UUID, error) {
	p, ok := api.PrincipalFrom(c)
	if !ok || !p.HasScope(registry.ScopeDeveloper) || !strings.HasPrefix(p.Subject, registry.SubjectPrefixDeveloper) {
		return uuid.Nil, apperr.New(apperr.Forbidden, "this route needs a developer token")
	}
	id, err := uuid.Parse(p.Subject[len(registry.SubjectPrefixDeveloper):])
	if err != nil {
		return uuid.Nil, apperr.New(apperr.Forbidden, "this route needs a developer token")
	}
	return id, nil
}

func didParam(c *gin.Context) (string, error) {
	did := c.Param("did")
	if _, err := registry.ParseDID(did); err != nil {
		return "", err
	}
	return did, nil
}

// authorizeAgent allows the agent itself, a developer who manages it
// (creator or accepted member of its owning organisation) and, when
// allowAdmin, admins.
func (h *Handler) authorizeAgent(c *gin.Context, a registry.Agent, allowAdmin bool) error {
	p, _ := api.PrincipalFrom(c)
	switch {
	case p.HasScope(registry.ScopeAgent) && p.Subject == a.DID:
		return nil
	case p.HasScope(registry.ScopeDeveloper):
		dev, err := developerID(c)
		if err != nil {
			return err
		}
		ok, err := h.store.CanManageAgent(c.Request.Context(), a, dev)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
	case allowAdmin && p.HasScope(registry.ScopeAdmin):
		return nil
	}
	return apperr.New(apperr.Forbidden, "you may not manage agent %s", a.DID)
}

// --- developers -----------------------------------------------------------------

func (h *Handler) signUp(c *gin.Context) {
	var req SignUpRequest
	if err := decode(c, &req); err != nil {
		fail(c, err)
		return
	}
	su, err := h.o.Onboarding.SignUpDeveloper(c.Request.Context(), req.Name, req.Email)
	if err != nil {
		fail(c, err)
		return
	}
	dev := su.Developer
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusCreated, SignUpResponse{
		DeveloperID: dev.ID.String(), AccountID: dev.Subject(), Name: dev.Name, Email: dev.Email,
		APIKey: su.APIKey.Clear, APIKeyID: su.APIKey.ID, CreatedAt: dev.CreatedAt,
	})
}

func (h *Handler) me(c *gin.Context) {
	id, err := developerID(c)
	if err != nil {
		fail(c, err)
		return
	}
	dev, err := h.store.Developer(c.Request.Context(), id)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, developerDTO(dev))
}

func (h *Handler) rotateAPIKey(c *gin.Context) {
	id, err := developerID(c)
	if err != nil {
		fail(c, err)
		return
	}
	if err := decodeOptional(c, &noBody{}); err != nil {
		fail(c, err)
		return
	}
	key := auth.NewAPIKey()
	dev, err := h.store.RotateAPIKey(c.Request.Context(), id, key.ID, key.Hash, h.now())
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, APIKeyResponse{DeveloperID: dev.ID.String(), APIKey: key.Clear, APIKeyID: key.ID, Generation: dev.APIKeyGeneration})
}

// noBody accepts an empty body or {}.
type noBody struct{}

func (noBody) Validate() error { return nil }

// --- bootstrap tokens and agents ------------------------------------------------

func (h *Handler) createBootstrapToken(c *gin.Context) {
	dev, err := developerID(c)
	if err != nil {
		fail(c, err)
		return
	}
	var req BootstrapTokenRequest
	if err := decodeOptional(c, &req); err != nil {
		fail(c, err)
		return
	}
	ttl := h.o.BootstrapTTL
	if req.TTLSeconds > 0 {
		ttl = time.Duration(req.TTLSeconds) * time.Second
	}
	var org *uuid.UUID
	if req.OrganisationID != "" {
		id, _ := parseUUID("organisation_id", req.OrganisationID)
		org = &id
	}
	now := h.now()
	tok, hash := auth.NewSecret(auth.PrefixBootstrap)
	bt, err := h.store.CreateBootstrapToken(c.Request.Context(), registrystore.NewBootstrapToken{
		ID: uuid.New(), Hash: hash, DeveloperID: dev, OrganisationID: org, ExpiresAt: now.Add(ttl),
	}, now)
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusCreated, BootstrapTokenResponse{BootstrapToken: tok, ExpiresAt: bt.ExpiresAt, OrganisationID: req.OrganisationID})
}

func (h *Handler) createAgent(c *gin.Context) {
	hash := c.MustGet(bootstrapHashKey).([]byte)
	var req CreateAgentRequest
	if err := decodeOptional(c, &req); err != nil {
		fail(c, err)
		return
	}
	a, err := h.o.Onboarding.CreateAgent(c.Request.Context(), hash, req.Card)
	if err != nil {
		fail(c, err)
		return
	}
	resp := AgentCredentialsResponse{
		DID: a.Agent.DID, HomeRegistry: a.Agent.HomeRegistry, Frame: a.Agent.Frame,
		ClientID: a.ClientID, ClientSecret: a.ClientSecret, CredentialGeneration: a.Agent.CredentialGeneration,
	}
	if a.Card != nil {
		cr := cardDTO(*a.Card)
		resp.Card = &cr
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusCreated, resp)
}

func (h *Handler) getAgent(c *gin.Context) {
	did, err := didParam(c)
	if err != nil {
		fail(c, err)
		return
	}
	a, err := h.store.Agent(c.Request.Context(), did)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, agentDTO(a))
}

// getBond shows the agent's reputation bond (a public reputation signal,
// like the agent itself). 404 when the node runs no bond or the agent has
// none.
func (h *Handler) getBond(c *gin.Context) {
	did, err := didParam(c)
	if err != nil {
		fail(c, err)
		return
	}
	if h.o.Bonds == nil {
		fail(c, apperr.New(apperr.NotFound, "this registry runs no reputation bonds"))
		return
	}
	st, err := h.o.Bonds.Status(c.Request.Context(), did)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, BondStatusResponse{
		AgentDID: st.AgentDID, State: st.State, AmountUnits: st.AmountUnits, LockedUnits: st.LockedUnits,
		LockedAt: st.LockedAt, SettledAt: st.SettledAt, MaturesNoEarlierThan: st.MaturesNoEarlierThan,
		Checks: st.Checks, LastReason: st.LastReason,
	})
}

func (h *Handler) getCard(c *gin.Context) {
	did, err := didParam(c)
	if err != nil {
		fail(c, err)
		return
	}
	a, err := h.store.Agent(c.Request.Context(), did)
	if err != nil {
		fail(c, err)
		return
	}
	if !a.Active() {
		fail(c, apperr.New(apperr.NotFound, "agent %s is deregistered", did))
		return
	}
	pc, err := h.store.Card(c.Request.Context(), did)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, cardDTO(pc))
}

func (h *Handler) publishCard(c *gin.Context) {
	did, err := didParam(c)
	if err != nil {
		fail(c, err)
		return
	}
	var card registry.AgentCard
	if err := api.DecodeJSON(c, &card); err != nil {
		fail(c, err)
		return
	}
	if err := card.Validate(); err != nil {
		fail(c, err)
		return
	}
	ctx := c.Request.Context()
	a, err := h.store.Agent(ctx, did)
	if err != nil {
		fail(c, err)
		return
	}
	if err := h.authorizeAgent(c, a, false); err != nil {
		fail(c, err)
		return
	}
	pc, err := h.store.PublishCard(ctx, did, card, h.now())
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, cardDTO(pc))
}

func (h *Handler) listAgents(c *gin.Context) {
	q := c.Request.URL.Query()
	for k, v := range q {
		switch k {
		case "skill", "limit", "cursor":
			if len(v) > 1 {
				fail(c, apperr.New(apperr.Invalid, "query parameter %q given more than once", k))
				return
			}
		default:
			fail(c, apperr.New(apperr.Invalid, "unknown query parameter %q (use skill, limit, cursor)", truncate(k, 40)))
			return
		}
	}
	skill := q.Get("skill")
	if skill != "" && !registry.ValidSkillID(skill) {
		fail(c, apperr.New(apperr.Invalid, "skill must be 1-%d characters of [a-z0-9._-]", registry.MaxSkillIDBytes))
		return
	}
	limit, err := parseLimit(q.Get("limit"))
	if err != nil {
		fail(c, err)
		return
	}
	after, err := decodeCursor(q.Get("cursor"))
	if err != nil {
		fail(c, err)
		return
	}
	cards, err := h.store.ListCards(c.Request.Context(), skill, after, limit)
	if err != nil {
		fail(c, err)
		return
	}
	resp := CardListResponse{Items: make([]CardResponse, 0, len(cards))}
	for _, pc := range cards {
		resp.Items = append(resp.Items, cardDTO(pc))
	}
	if len(cards) == limit {
		resp.NextCursor = encodeCursor(cards[len(cards)-1].DID)
	}
	c.JSON(http.StatusOK, resp)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for !utf8.ValidString(s) && len(s) > 0 {
		s = s[:len(s)-1]
	}
	return s + "…"
}

func (h *Handler) rotateCredentials(c *gin.Context) {
	did, err := didParam(c)
	if err != nil {
		fail(c, err)
		return
	}
	if err := decodeOptional(c, &noBody{}); err != nil {
		fail(c, err)
		return
	}
	ctx := c.Request.Context()
	a, err := h.store.Agent(ctx, did)
	if err != nil {
		fail(c, err)
		return
	}
	if err := h.authorizeAgent(c, a, false); err != nil {
		fail(c, err)
		return
	}
	p, _ := api.PrincipalFrom(c)
	clientID := auth.NewHandle(auth.PrefixClientID)
	secret, hash := auth.NewSecret(auth.PrefixClientSecret)
	a, err = h.store.RotateAgentCredentials(ctx, did, clientID, hash, p.Subject, h.now())
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, AgentCredentialsResponse{
		DID: a.DID, HomeRegistry: a.HomeRegistry, Frame: a.Frame, ClientID: clientID, ClientSecret: secret, CredentialGeneration: a.CredentialGeneration,
	})
}

func (h *Handler) deregister(c *gin.Context) {
	did, err := didParam(c)
	if err != nil {
		fail(c, err)
		return
	}
	ctx := c.Request.Context()
	a, err := h.store.Agent(ctx, did)
	if err != nil {
		fail(c, err)
		return
	}
	if err := h.authorizeAgent(c, a, true); err != nil {
		fail(c, err)
		return
	}
	p, _ := api.PrincipalFrom(c)
	a, err = h.o.Onboarding.DeregisterAgent(ctx, did, p.Subject)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, agentDTO(a))
}

// --- tokens ---------------------------------------------------------------------

// dummyHash equalises the time of a lookup miss with a hash comparison.
var dummyHash = auth.HashSecret("tps_dummy-secret-for-constant-time-misses")

var errInvalidClient = apperr.New(apperr.Unauthenticated, "invalid client credentials")

func (h *Handler) token(c *gin.Context) {
	req, err := parseTokenRequest(c)
	if err == nil {
		err = req.Validate()
	}
	if err != nil {
		fail(c, err)
		return
	}
	ctx := c.Request.Context()
	var subject, scope string
	var generation int64
	switch req.GrantType {
	case GrantClientCredentials:
		if !h.allow(c, h.credLim, "client:"+req.ClientID) {
			return
		}
		subject, scope, generation, err = h.clientCredentials(ctx, req.ClientID, req.ClientSecret)
	case GrantAPIKey:
		keyID, ok := auth.APIKeyID(req.APIKey)
		if !ok {
			auth.SecretMatches(req.APIKey, dummyHash)
			fail(c, apperr.New(apperr.Unauthenticated, "invalid API key"))
			return
		}
		if !h.allow(c, h.credLim, "apikey:"+keyID) {
			return
		}
		subject, scope, generation, err = h.apiKey(ctx, keyID, req.APIKey)
	}
	if err != nil {
		fail(c, err)
		return
	}
	tok, claims, err := h.signer.Issue(subject, scope, generation)
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Header("Pragma", "no-cache")
	c.JSON(http.StatusOK, TokenResponse{AccessToken: tok, TokenType: "Bearer", ExpiresIn: claims.ExpiresAt - claims.IssuedAt, Scope: claims.Scope})
}

func (h *Handler) clientCredentials(ctx context.Context, clientID, secret string) (string, string, int64, error) {
	switch {
	case auth.ValidHandle(clientID, auth.PrefixClientID):
		a, hash, err := h.store.AgentByClientID(ctx, clientID)
		if apperr.Is(err, apperr.NotFound) {
			auth.SecretMatches(secret, dummyHash)
			return "", "", 0, errInvalidClient
		}
		if err != nil {
			return "", "", 0, err
		}
		if !auth.SecretMatches(secret, hash) || !a.Active() {
			return "", "", 0, errInvalidClient
		}
		return a.DID, registry.ScopeAgent, a.CredentialGeneration, nil
	case auth.ValidHandle(clientID, auth.PrefixAdminClientID):
		ac, hash, err := h.store.AdminClientByClientID(ctx, clientID)
		if apperr.Is(err, apperr.NotFound) {
			auth.SecretMatches(secret, dummyHash)
			return "", "", 0, errInvalidClient
		}
		if err != nil {
			return "", "", 0, err
		}
		if !auth.SecretMatches(secret, hash) || ac.Revoked {
			return "", "", 0, errInvalidClient
		}
		return registry.AdminSubject(ac.ID), registry.ScopeAdmin, 1, nil
	}
	auth.SecretMatches(secret, dummyHash)
	return "", "", 0, errInvalidClient
}

func (h *Handler) apiKey(ctx context.Context, keyID, key string) (string, string, int64, error) {
	dev, hash, err := h.store.DeveloperByAPIKeyID(ctx, keyID)
	if apperr.Is(err, apperr.NotFound) {
		auth.SecretMatches(key, dummyHash)
		return "", "", 0, apperr.New(apperr.Unauthenticated, "invalid API key")
	}
	if err != nil {
		return "", "", 0, err
	}
	if !auth.SecretMatches(key, hash) || dev.Suspended {
		return "", "", 0, apperr.New(apperr.Unauthenticated, "invalid API key")
	}
	return dev.Subject(), registry.ScopeDeveloper, dev.APIKeyGeneration, nil
}

var tokenFormFields = map[string]bool{"grant_type": true, "client_id": true, "client_secret": true, "api_key": true}

// parseTokenRequest reads a JSON or form-encoded token request; forms must
// use only the known fields, each at most once.
func parseTokenRequest(c *gin.Context) (TokenRequest, error) {
	var req TokenRequest
	ct := c.GetHeader("Content-Type")
	mt := ""
	if ct != "" {
		var err error
		mt, _, err = mime.ParseMediaType(ct)
		if err != nil {
			return req, apperr.New(apperr.Invalid, "Content-Type must be application/json or application/x-www-form-urlencoded")
		}
	}
	switch mt {
	case "", "application/json":
		return req, api.DecodeJSON(c, &req)
	case "application/x-www-form-urlencoded":
		body, err := readBody(c)
		if err != nil {
			return req, err
		}
		return parseTokenForm(body)
	}
	return req, apperr.New(apperr.Invalid, "Content-Type must be application/json or application/x-www-form-urlencoded")
}

func parseTokenForm(body []byte) (TokenRequest, error) {
	var req TokenRequest
	if !utf8.Valid(body) {
		return req, apperr.New(apperr.Invalid, "request body is not valid UTF-8")
	}
	vals, err := url.ParseQuery(string(body))
	if err != nil {
		return req, apperr.New(apperr.Invalid, "malformed form body")
	}
	for k, v := range vals {
		if !tokenFormFields[k] {
			return req, apperr.New(apperr.Invalid, "unknown form field %q", truncate(k, 40))
		}
		if len(v) != 1 {
			return req, apperr.New(apperr.Invalid, "form field %q given more than once", k)
		}
		if !utf8.ValidString(v[0]) {
			return req, apperr.New(apperr.Invalid, "form field %q is not valid UTF-8", k)
		}
	}
	req.GrantType, req.ClientID, req.ClientSecret, req.APIKey = vals.Get("grant_type"), vals.Get("client_id"), vals.Get("client_secret"), vals.Get("api_key")
	return req, nil
}

func (h *Handler) revoke(c *gin.Context) {
	claims, ok := auth.ClaimsFrom(c)
	if !ok {
		fail(c, apperr.New(apperr.Unauthenticated, "authentication required"))
		return
	}
	if err := decodeOptional(c, &noBody{}); err != nil {
		fail(c, err)
		return
	}
	if err := h.store.RevokeToken(c.Request.Context(), claims, h.now()); err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"revoked": claims.ID})
}

func (h *Handler) jwks(c *gin.Context) {
	c.Header("Cache-Control", "public, max-age=300")
	c.JSON(http.StatusOK, gin.H{"keys": h.verifier.JWKS()})
}

// --- organisations ----------------------------------------------------------------

func orgParam(c *gin.Context) (uuid.UUID, error) { return parseUUID("organisation id", c.Param("id")) }

func (h *Handler) createOrganisation(c *gin.Context) {
	dev, err := developerID(c)
	if err != nil {
		fail(c, err)
		return
	}
	var req OrganisationRequest
	if err := decode(c, &req); err != nil {
		fail(c, err)
		return
	}
	org, err := h.store.CreateOrganisation(c.Request.Context(), uuid.New(), req.Name, dev, h.now())
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, orgDTO(org, nil))
}

func (h *Handler) getOrganisation(c *gin.Context) {
	dev, err := developerID(c)
	if err != nil {
		fail(c, err)
		return
	}
	id, err := orgParam(c)
	if err != nil {
		fail(c, err)
		return
	}
	ctx := c.Request.Context()
	org, err := h.store.Organisation(ctx, id)
	if err != nil {
		fail(c, err)
		return
	}
	m, err := h.store.Member(ctx, id, dev)
	if err != nil && !apperr.Is(err, apperr.NotFound) {
		fail(c, err)
		return
	}
	if err != nil || !m.Accepted() {
		// Pending invitees see the organisation, not its members.
		if err == nil {
			c.JSON(http.StatusOK, orgDTO(org, nil))
			return
		}
		fail(c, apperr.New(apperr.Forbidden, "you are not a member of this organisation"))
		return
	}
	members, err := h.store.Members(ctx, id)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, orgDTO(org, members))
}

func (h *Handler) inviteMember(c *gin.Context) {
	dev, err := developerID(c)
	if err != nil {
		fail(c, err)
		return
	}
	id, err := orgParam(c)
	if err != nil {
		fail(c, err)
		return
	}
	var req InviteRequest
	if err := decode(c, &req); err != nil {
		fail(c, err)
		return
	}
	invitee, _ := parseUUID("developer_id", req.DeveloperID)
	role := req.Role
	if role == "" {
		role = registry.RoleMember
	}
	m, err := h.store.InviteMember(c.Request.Context(), id, invitee, role, dev, h.now())
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, memberDTO(m))
}

func (h *Handler) acceptInvitation(c *gin.Context) {
	dev, err := developerID(c)
	if err != nil {
		fail(c, err)
		return
	}
	id, err := orgParam(c)
	if err != nil {
		fail(c, err)
		return
	}
	if err := decodeOptional(c, &noBody{}); err != nil {
		fail(c, err)
		return
	}
	m, err := h.store.AcceptInvitation(c.Request.Context(), id, dev, h.now())
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, memberDTO(m))
}

func (h *Handler) removeMember(c *gin.Context) {
	dev, err := developerID(c)
	if err != nil {
		fail(c, err)
		return
	}
	id, err := orgParam(c)
	if err != nil {
		fail(c, err)
		return
	}
	target, err := parseUUID("developer_id", c.Param("developer_id"))
	if err != nil {
		fail(c, err)
		return
	}
	m, err := h.store.RemoveMember(c.Request.Context(), id, target, dev, h.now())
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, memberDTO(m))
}

// --- admin ------------------------------------------------------------------------

func (h *Handler) stats(c *gin.Context) {
	s, err := h.store.Stats(c.Request.Context())
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, s)
}
