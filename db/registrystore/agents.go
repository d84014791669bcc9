package registrystore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/registrystore/internal/registrydb"
	"github.com/theprotocol-dev/theprotocol/registry"
)

// ErrBootstrapInvalid is returned for a bootstrap token that is unknown,
// expired or already used: one answer for all three, so probing reveals
// nothing.
var ErrBootstrapInvalid = apperr.New(apperr.Unauthenticated, "bootstrap token is invalid, expired or already used")

// NewBootstrapToken is a bootstrap token to store (by hash only).
type NewBootstrapToken struct {
	ID             uuid.UUID
	Hash           []byte
	DeveloperID    uuid.UUID
	OrganisationID *uuid.UUID // the agent will be owned by this organisation
	ExpiresAt      time.Time
}

// CreateBootstrapToken stores a bootstrap token. When it names an
// organisation, the developer must be an accepted member (else Forbidden).
func (s *Store) CreateBootstrapToken(ctx context.Context, in NewBootstrapToken, now time.Time) (registry.BootstrapToken, error) {
	var out registry.BootstrapToken
	err := s.Tx(ctx, func(tx pgx.Tx) error {
		if in.OrganisationID != nil {
			if err := s.requireMember(ctx, tx, *in.OrganisationID, in.DeveloperID); err != nil {
				return err
			}
		}
		row, err := s.q.BootstrapTokenInsert(ctx, tx, registrydb.BootstrapTokenInsertParams{
			ID: in.ID, TokenHash: in.Hash, DeveloperID: in.DeveloperID, OrganisationID: in.OrganisationID, Now: now, ExpiresAt: in.ExpiresAt,
		})
		if err != nil {
			return err
		}
		out = registry.BootstrapToken{ID: row.ID, DeveloperID: row.DeveloperID, OrganisationID: row.OrganisationID, CreatedAt: row.CreatedAt, ExpiresAt: row.ExpiresAt}
		return nil
	})
	return out, dbErr(err, "create bootstrap token")
}

// PeekBootstrapToken returns the unconsumed, unexpired token with hash, or
// ErrBootstrapInvalid. It decides nothing: CreateAgent consumes atomically.
func (s *Store) PeekBootstrapToken(ctx context.Context, hash []byte, now time.Time) (registry.BootstrapToken, error) {
	row, err := s.q.BootstrapTokenPeek(ctx, s.Pool, registrydb.BootstrapTokenPeekParams{TokenHash: hash, Now: now})
	if err != nil {
		if db.IsNotFound(err) {
			return registry.BootstrapToken{}, ErrBootstrapInvalid
		}
		return registry.BootstrapToken{}, fmt.Errorf("peek bootstrap token: %w", err)
	}
	return registry.BootstrapToken{ID: row.ID, DeveloperID: row.DeveloperID, OrganisationID: row.OrganisationID, CreatedAt: row.CreatedAt, ExpiresAt: row.ExpiresAt}, nil
}

// NewAgent is an agent creation: the caller generated the DID and the client
// credentials and passes the bootstrap token's hash and the secret's hash.
type NewAgent struct {
	DID                string
	BootstrapTokenHash []byte
	ClientID           string
	ClientSecretHash   []byte
	Card               *registry.AgentCard // optional initial card, already validated
}

// AgentRegisteredPayload is the AgentRegistered event payload.
type AgentRegisteredPayload struct {
	DID            string     `json:"did"`
	HomeRegistry   string     `json:"home_registry"`
	Frame          string     `json:"frame"`
	DeveloperID    uuid.UUID  `json:"developer_id"`
	OrganisationID *uuid.UUID `json:"organisation_id,omitempty"`
	ClientID       string     `json:"client_id"`
}

// CreateAgent consumes the bootstrap token and creates the agent (and its
// first card, if given) in one transaction with AgentRegistered (and
// AgentCardPublished). The token is consumed by a single conditional
// UPDATE, so of any number of concurrent creations with one token exactly
// one commits; the others get ErrBootstrapInvalid. The agent is owned by the
// token's developer and, if the token names one, its organisation (whose
// membership is re-checked here).
func (s *Store) CreateAgent(ctx context.Context, in NewAgent, now time.Time) (registry.Agent, *registry.PublishedCard, error) {
	var agent registry.Agent
	var card *registry.PublishedCard
	err := s.Tx(ctx, func(tx pgx.Tx) error {
		tok, err := s.q.BootstrapTokenConsume(ctx, tx, registrydb.BootstrapTokenConsumeParams{TokenHash: in.BootstrapTokenHash, Now: now, ConsumedBy: in.DID})
		if err != nil {
			if db.IsNotFound(err) {
				return ErrBootstrapInvalid
			}
			return err
		}
		dev, err := s.q.DeveloperGet(ctx, tx, tok.DeveloperID)
		if err != nil {
			return err
		}
		if dev.SuspendedAt != nil {
			return apperr.New(apperr.Forbidden, "the developer account is suspended")
		}
		if tok.OrganisationID != nil {
			if err := s.requireMember(ctx, tx, *tok.OrganisationID, tok.DeveloperID); err != nil {
				return err
			}
		}
		row, err := s.q.AgentInsert(ctx, tx, registrydb.AgentInsertParams{
			Did: in.DID, HomeRegistry: s.registry, Frame: s.frame, DeveloperID: tok.DeveloperID, OrganisationID: tok.OrganisationID,
			BootstrapTokenID: tok.ID, ClientID: in.ClientID, ClientSecretHash: in.ClientSecretHash, Now: now,
		})
		if err != nil {
			return err
		}
		agent = agentFromRow(row)
		if err := s.emit(ctx, tx, registry.EventAgentRegistered, "agent-registered-"+in.DID, in.DID, now, AgentRegisteredPayload{
			DID: in.DID, HomeRegistry: s.registry, Frame: s.frame, DeveloperID: tok.DeveloperID, OrganisationID: tok.OrganisationID, ClientID: in.ClientID,
		}); err != nil {
			return err
		}
		if in.Card != nil {
			pc, err := s.publishCard(ctx, tx, in.DID, *in.Card, now)
			if err != nil {
				return err
			}
			card = &pc
		}
		return nil
	})
	if err != nil {
		return registry.Agent{}, nil, dbErr(err, "create agent")
	}
	return agent, card, nil
}

// Agent returns an agent by DID (apperr.NotFound if none).
func (s *Store) Agent(ctx context.Context, did string) (registry.Agent, error) {
	row, err := s.q.AgentGet(ctx, s.Pool, did)
	if err != nil {
		return registry.Agent{}, db.NotFound(err, "agent %s not found", did)
	}
	return agentFromRow(row), nil
}

// AgentByClientID returns the agent holding client_id and its secret hash,
// for a constant-time comparison by the caller.
func (s *Store) AgentByClientID(ctx context.Context, clientID string) (registry.Agent, []byte, error) {
	row, err := s.q.AgentGetByClientID(ctx, s.Pool, clientID)
	if err != nil {
		return registry.Agent{}, nil, db.NotFound(err, "client not found")
	}
	return agentFromRow(row), row.ClientSecretHash, nil
}

// CredentialsRotatedPayload is the CredentialsRotated event payload.
type CredentialsRotatedPayload struct {
	DID        string `json:"did"`
	ClientID   string `json:"client_id"`
	Generation int64  `json:"generation"`
	By         string `json:"by"` // principal subject that rotated
}

// RotateAgentCredentials replaces the agent's client_id and secret and bumps
// its credential generation, so the old secret and every token issued under
// it stop working with this commit. NotFound for unknown, FailedPrecondition
// for deregistered agents.
func (s *Store) RotateAgentCredentials(ctx context.Context, did, clientID string, secretHash []byte, by string, now time.Time) (registry.Agent, error) {
	var out registry.Agent
	err := s.Tx(ctx, func(tx pgx.Tx) error {
		if err := s.lockActiveAgent(ctx, tx, did); err != nil {
			return err
		}
		row, err := s.q.AgentRotateCredentials(ctx, tx, registrydb.AgentRotateCredentialsParams{Did: did, ClientID: clientID, ClientSecretHash: secretHash, Now: now})
		if err != nil {
			return err
		}
		out = agentFromRow(row)
		return s.emit(ctx, tx, registry.EventCredentialsRotated, "credentials-rotated-"+did+"-g"+gen(row.CredentialGeneration), did, now,
			CredentialsRotatedPayload{DID: did, ClientID: clientID, Generation: row.CredentialGeneration, By: by})
	})
	return out, dbErr(err, "rotate agent credentials")
}

// AgentDeregisteredPayload is the AgentDeregistered event payload.
type AgentDeregisteredPayload struct {
	DID string `json:"did"`
	By  string `json:"by"`
}

// DeregisterAgent marks the agent deregistered (its credentials and tokens
// stop working, its card leaves listings) with AgentDeregistered. NotFound
// for unknown, FailedPrecondition for already deregistered agents.
func (s *Store) DeregisterAgent(ctx context.Context, did, by string, now time.Time) (registry.Agent, error) {
	var out registry.Agent
	err := s.Tx(ctx, func(tx pgx.Tx) error {
		if err := s.lockActiveAgent(ctx, tx, did); err != nil {
			return err
		}
		row, err := s.q.AgentDeregister(ctx, tx, registrydb.AgentDeregisterParams{Did: did, Now: now})
		if err != nil {
			return err
		}
		out = agentFromRow(row)
		return s.emit(ctx, tx, registry.EventAgentDeregistered, "agent-deregistered-"+did, did, now, AgentDeregisteredPayload{DID: did, By: by})
	})
	return out, dbErr(err, "deregister agent")
}

func (s *Store) lockActiveAgent(ctx context.Context, tx pgx.Tx, did string) error {
	row, err := s.q.AgentGetForUpdate(ctx, tx, did)
	if err != nil {
		return db.NotFound(err, "agent %s not found", did)
	}
	if row.Status != registry.AgentActive {
		return apperr.New(apperr.FailedPrecondition, "agent %s is deregistered", did)
	}
	return nil
}

// CanManageAgent reports whether developer devID may manage agent a: it
// created it, or a is owned by an organisation devID is an accepted member of.
func (s *Store) CanManageAgent(ctx context.Context, a registry.Agent, devID uuid.UUID) (bool, error) {
	if a.DeveloperID == devID {
		return true, nil
	}
	if a.OrganisationID == nil {
		return false, nil
	}
	m, err := s.q.OrganisationMemberGet(ctx, s.Pool, registrydb.OrganisationMemberGetParams{OrganisationID: *a.OrganisationID, DeveloperID: devID})
	if db.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("membership: %w", err)
	}
	return m.AcceptedAt != nil, nil
}

func agentFromRow(r registrydb.Agent) registry.Agent {
	return registry.Agent{
		DID: r.Did, HomeRegistry: r.HomeRegistry, Frame: r.Frame, DeveloperID: r.DeveloperID, OrganisationID: r.OrganisationID,
		ClientID: r.ClientID, CredentialGeneration: r.CredentialGeneration, Status: r.Status, CreatedAt: r.CreatedAt, DeregisteredAt: r.DeregisteredAt,
	}
}

// --- agent cards -------------------------------------------------------------

// AgentCardPublishedPayload is the AgentCardPublished event payload: the
// card itself, so peers can propagate it (federation sync).
type AgentCardPublishedPayload struct {
	DID     string             `json:"did"`
	Version int64              `json:"version"`
	Card    registry.AgentCard `json:"card"`
}

// PublishCard stores a new version of the active agent's card with
// AgentCardPublished. The card must already be validated.
func (s *Store) PublishCard(ctx context.Context, did string, card registry.AgentCard, now time.Time) (registry.PublishedCard, error) {
	var out registry.PublishedCard
	err := s.Tx(ctx, func(tx pgx.Tx) error {
		if err := s.lockActiveAgent(ctx, tx, did); err != nil {
			return err
		}
		var err error
		out, err = s.publishCard(ctx, tx, did, card, now)
		return err
	})
	return out, dbErr(err, "publish card")
}

func (s *Store) publishCard(ctx context.Context, tx pgx.Tx, did string, card registry.AgentCard, now time.Time) (registry.PublishedCard, error) {
	raw, err := json.Marshal(card)
	if err != nil {
		return registry.PublishedCard{}, fmt.Errorf("encode card: %w", err)
	}
	row, err := s.q.AgentCardUpsert(ctx, tx, registrydb.AgentCardUpsertParams{Did: did, Name: card.Name, Card: raw, SkillIds: card.SkillIDs(), Now: now})
	if err != nil {
		return registry.PublishedCard{}, err
	}
	pc := registry.PublishedCard{DID: did, Version: row.Version, Card: card, PublishedAt: row.PublishedAt}
	err = s.emit(ctx, tx, registry.EventAgentCardPublished, "agent-card-published-"+did+"-v"+gen(row.Version), did, now,
		AgentCardPublishedPayload{DID: did, Version: row.Version, Card: card})
	return pc, err
}

// Card returns the agent's current card (NotFound if it never published one).
func (s *Store) Card(ctx context.Context, did string) (registry.PublishedCard, error) {
	row, err := s.q.AgentCardGet(ctx, s.Pool, did)
	if err != nil {
		return registry.PublishedCard{}, db.NotFound(err, "agent %s has no card", did)
	}
	return cardFromRow(row)
}

// ListCards returns up to limit cards of active agents in DID order after
// afterDID ("" for the first page), optionally only those with skill.
func (s *Store) ListCards(ctx context.Context, skill string, afterDID string, limit int) ([]registry.PublishedCard, error) {
	if limit <= 0 || limit > registry.MaxPageSize {
		return nil, apperr.New(apperr.Invalid, "limit must be within 1..%d", registry.MaxPageSize)
	}
	var sk *string
	if skill != "" {
		sk = &skill
	}
	rows, err := s.q.AgentCardList(ctx, s.Pool, registrydb.AgentCardListParams{Skill: sk, AfterDid: afterDID, MaxRows: int32(limit)})
	if err != nil {
		return nil, fmt.Errorf("list cards: %w", err)
	}
	out := make([]registry.PublishedCard, 0, len(rows))
	for _, r := range rows {
		pc, err := cardFromRow(r)
		if err != nil {
			return nil, err
		}
		out = append(out, pc)
	}
	return out, nil
}

func cardFromRow(r registrydb.AgentCard) (registry.PublishedCard, error) {
	var c registry.AgentCard
	if err := json.Unmarshal(r.Card, &c); err != nil {
		return registry.PublishedCard{}, fmt.Errorf("stored card of %s is corrupt: %w", r.Did, err)
	}
	return registry.PublishedCard{DID: r.Did, Version: r.Version, Card: c, PublishedAt: r.PublishedAt}, nil
}
