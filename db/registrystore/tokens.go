package registrystore

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/registrystore/internal/registrydb"
	"github.com/theprotocol-dev/theprotocol/registry"
)

// CheckToken implements auth.StateChecker with one indexed query: the
// token's subject must exist and be active, its credential generation must
// be current and its ID must not be revoked. It returns
// registry.ErrTokenRevoked for a dead token and apperr.Unavailable when the
// database cannot answer.
func (s *Store) CheckToken(ctx context.Context, c registry.Claims) error {
	kind, id, err := registry.ParseSubject(c.Subject)
	if err != nil {
		return registry.ErrTokenRevoked
	}
	var active, revoked bool
	var generation int64
	switch kind {
	case registry.KindAgent:
		row, err := s.q.AgentAuthState(ctx, s.Pool, registrydb.AgentAuthStateParams{Did: id, Jti: c.ID})
		if err != nil {
			return stateErr(err)
		}
		active, revoked, generation = row.Active, row.Revoked, row.Generation
	case registry.KindDeveloper:
		row, err := s.q.DeveloperAuthState(ctx, s.Pool, registrydb.DeveloperAuthStateParams{ID: uuid.MustParse(id), Jti: c.ID})
		if err != nil {
			return stateErr(err)
		}
		active, revoked, generation = row.Active, row.Revoked, row.Generation
	case registry.KindAdmin:
		row, err := s.q.AdminClientAuthState(ctx, s.Pool, registrydb.AdminClientAuthStateParams{ID: uuid.MustParse(id), Jti: c.ID})
		if err != nil {
			return stateErr(err)
		}
		active, revoked, generation = row.Active, row.Revoked, c.Generation
	default:
		return registry.ErrTokenRevoked
	}
	if !active || revoked || generation != c.Generation {
		return registry.ErrTokenRevoked
	}
	return nil
}

func stateErr(err error) error {
	if db.IsNotFound(err) {
		return registry.ErrTokenRevoked
	}
	return apperr.Wrap(err, apperr.Unavailable, "cannot check the token right now; retry")
}

// RevokeToken revokes one token by ID until it expires (idempotent).
func (s *Store) RevokeToken(ctx context.Context, c registry.Claims, now time.Time) error {
	err := s.q.RevokedTokenInsert(ctx, s.Pool, registrydb.RevokedTokenInsertParams{
		Jti: c.ID, Subject: c.Subject, Now: now, ExpiresAt: time.Unix(c.ExpiresAt, 0).UTC(),
	})
	if err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	return nil
}

// --- admin clients -----------------------------------------------------------

// CreateAdminClient stores an admin client (by secret hash).
func (s *Store) CreateAdminClient(ctx context.Context, id uuid.UUID, name, clientID string, secretHash []byte, now time.Time) (registry.AdminClient, error) {
	row, err := s.q.AdminClientInsert(ctx, s.Pool, registrydb.AdminClientInsertParams{ID: id, Name: name, ClientID: clientID, ClientSecretHash: secretHash, Now: now})
	if err != nil {
		return registry.AdminClient{}, fmt.Errorf("create admin client: %w", err)
	}
	return adminFromRow(row), nil
}

// AdminClientByClientID returns the admin client and its secret hash.
func (s *Store) AdminClientByClientID(ctx context.Context, clientID string) (registry.AdminClient, []byte, error) {
	row, err := s.q.AdminClientGetByClientID(ctx, s.Pool, clientID)
	if err != nil {
		return registry.AdminClient{}, nil, db.NotFound(err, "client not found")
	}
	return adminFromRow(row), row.ClientSecretHash, nil
}

// RevokeAdminClient revokes an admin client and, through CheckToken, all its
// tokens. NotFound if unknown or already revoked.
func (s *Store) RevokeAdminClient(ctx context.Context, id uuid.UUID, now time.Time) error {
	_, err := s.q.AdminClientRevoke(ctx, s.Pool, registrydb.AdminClientRevokeParams{ID: id, Now: now})
	return db.NotFound(err, "admin client not found or already revoked")
}

func adminFromRow(r registrydb.AdminClient) registry.AdminClient {
	return registry.AdminClient{ID: r.ID, Name: r.Name, ClientID: r.ClientID, CreatedAt: r.CreatedAt, Revoked: r.RevokedAt != nil}
}

// --- maintenance -------------------------------------------------------------

// Stats are registry counters for the admin API.
type Stats struct {
	Developers   int64 `json:"developers"`
	ActiveAgents int64 `json:"active_agents"`
}

// Stats counts developers and active agents.
func (s *Store) Stats(ctx context.Context) (Stats, error) {
	d, err := s.q.DeveloperCount(ctx, s.Pool)
	if err != nil {
		return Stats{}, err
	}
	a, err := s.q.AgentCount(ctx, s.Pool)
	if err != nil {
		return Stats{}, err
	}
	return Stats{Developers: d, ActiveAgents: a}, nil
}

// Sweep deletes up to maxRows expired unconsumed bootstrap tokens and up to
// maxRows revocations of expired tokens; a sweeper workflow calls it until
// it returns 0.
func (s *Store) Sweep(ctx context.Context, now time.Time, maxRows int32) (int64, error) {
	a, err := s.q.BootstrapTokenSweep(ctx, s.Pool, registrydb.BootstrapTokenSweepParams{Now: now, MaxRows: maxRows})
	if err != nil {
		return 0, err
	}
	b, err := s.q.RevokedTokenSweep(ctx, s.Pool, registrydb.RevokedTokenSweepParams{Now: now, MaxRows: maxRows})
	return a + b, err
}
