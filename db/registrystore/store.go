// Package registrystore is the registry role's storage: a hand-written
// store over its sqlc-generated internal/registrydb that owns every transaction,
// writes each state change's events to the outbox in the same transaction,
// converts rows to registry domain types, and maps database errors to apperr
// codes (pgx.ErrNoRows → NotFound, unique violations → Conflict).
//
// The store never sees a secret in clear: callers pass hashes (auth.HashSecret)
// and public handles. Every method takes `now` from the caller's clock.
package registrystore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/registrystore/internal/registrydb"
	"github.com/theprotocol-dev/theprotocol/events"
	"github.com/theprotocol-dev/theprotocol/registry"
)

// Store is the registry database of one registry node.
type Store struct {
	*db.Store
	q        *registrydb.Queries
	outbox   *db.OutboxWriter
	registry string
	frame    string
}

// New returns a store on pool for registryID in frame; name labels metrics;
// guard is the emission policy check (nil allows everything).
func New(pool *pgxpool.Pool, name, frame, registryID string, guard db.EmissionGuard) *Store {
	return &Store{
		Store:    db.NewStore(pool, name),
		q:        registrydb.New(),
		outbox:   db.NewOutboxWriter(frame, registryID, events.SourceRegistry, guard),
		registry: registryID,
		frame:    frame,
	}
}

// RegistryID is the registry this store belongs to.
func (s *Store) RegistryID() string { return s.registry }

// Frame is the registry's frame.
func (s *Store) Frame() string { return s.frame }

// emit writes one event in tx. Keys derive from business identity.
func (s *Store) emit(ctx context.Context, tx pgx.Tx, typ, key, subject string, now time.Time, payload any) error {
	env, err := events.New(typ, key, subject, now)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("encode %s payload: %w", typ, err)
	}
	env.Payload = raw
	return s.outbox.Write(ctx, tx, env)
}

func gen(n int64) string { return strconv.FormatInt(n, 10) }

// unavailable wraps unexpected database errors so callers see a retryable
// code rather than a raw driver error; apperr errors pass through.
func dbErr(err error, what string) error {
	if err == nil {
		return nil
	}
	var ae *apperr.Error
	if errors.As(err, &ae) {
		return err
	}
	return fmt.Errorf("%s: %w", what, err)
}

// --- developers --------------------------------------------------------------

// NewDeveloper is a sign-up: the caller generated the ID and the API key
// and passes only the key's handle and hash.
type NewDeveloper struct {
	ID         uuid.UUID
	Name       string
	Email      string
	APIKeyID   string
	APIKeyHash []byte
}

// DeveloperRegisteredPayload is the DeveloperRegistered event payload.
type DeveloperRegisteredPayload struct {
	DeveloperID uuid.UUID `json:"developer_id"`
	Name        string    `json:"name"`
	AccountID   string    `json:"account_id"` // the developer wallet
}

// CreateDeveloper inserts the developer and its DeveloperRegistered event in
// one transaction. A taken email is apperr.Conflict.
func (s *Store) CreateDeveloper(ctx context.Context, in NewDeveloper, now time.Time) (registry.Developer, error) {
	var out registry.Developer
	err := s.Tx(ctx, func(tx pgx.Tx) error {
		row, err := s.q.DeveloperInsert(ctx, tx, registrydb.DeveloperInsertParams{
			ID: in.ID, Name: in.Name, Email: in.Email, ApiKeyID: in.APIKeyID, ApiKeyHash: in.APIKeyHash, Now: now,
		})
		if err != nil {
			if db.SQLState(err) == db.SQLStateUnique && db.ConstraintName(err) == "developers_email_unique" {
				return apperr.New(apperr.Conflict, "a developer with this email already exists")
			}
			return err
		}
		out = developerFromRow(row)
		return s.emit(ctx, tx, registry.EventDeveloperRegistered, "developer-registered-"+in.ID.String(), out.Subject(), now,
			DeveloperRegisteredPayload{DeveloperID: in.ID, Name: in.Name, AccountID: out.Subject()})
	})
	return out, dbErr(err, "create developer")
}

// Developer returns a developer by ID (apperr.NotFound if none).
func (s *Store) Developer(ctx context.Context, id uuid.UUID) (registry.Developer, error) {
	row, err := s.q.DeveloperGet(ctx, s.Pool, id)
	if err != nil {
		return registry.Developer{}, db.NotFound(err, "developer not found")
	}
	return developerFromRow(row), nil
}

// DeveloperByAPIKeyID returns the developer owning the API key handle and
// the key's stored hash, for a constant-time comparison by the caller.
func (s *Store) DeveloperByAPIKeyID(ctx context.Context, keyID string) (registry.Developer, []byte, error) {
	row, err := s.q.DeveloperGetByAPIKeyID(ctx, s.Pool, keyID)
	if err != nil {
		return registry.Developer{}, nil, db.NotFound(err, "developer not found")
	}
	return developerFromRow(row), row.ApiKeyHash, nil
}

// APIKeyRotatedPayload is the ApiKeyRotated event payload.
type APIKeyRotatedPayload struct {
	DeveloperID uuid.UUID `json:"developer_id"`
	Generation  int64     `json:"generation"`
}

// RotateAPIKey replaces the developer's API key and bumps its generation,
// revoking the old key and every token issued under it, with an
// ApiKeyRotated event. A suspended or unknown developer is NotFound.
func (s *Store) RotateAPIKey(ctx context.Context, id uuid.UUID, keyID string, keyHash []byte, now time.Time) (registry.Developer, error) {
	var out registry.Developer
	err := s.Tx(ctx, func(tx pgx.Tx) error {
		row, err := s.q.DeveloperRotateAPIKey(ctx, tx, registrydb.DeveloperRotateAPIKeyParams{ID: id, ApiKeyID: keyID, ApiKeyHash: keyHash, Now: now})
		if err != nil {
			return db.NotFound(err, "developer not found")
		}
		out = developerFromRow(row)
		return s.emit(ctx, tx, registry.EventAPIKeyRotated, "api-key-rotated-"+id.String()+"-g"+gen(row.ApiKeyGeneration), out.Subject(), now,
			APIKeyRotatedPayload{DeveloperID: id, Generation: row.ApiKeyGeneration})
	})
	return out, dbErr(err, "rotate api key")
}

func developerFromRow(r registrydb.Developer) registry.Developer {
	return registry.Developer{
		ID: r.ID, Name: r.Name, Email: r.Email, APIKeyID: r.ApiKeyID, APIKeyGeneration: r.ApiKeyGeneration,
		CreatedAt: r.CreatedAt, Suspended: r.SuspendedAt != nil,
	}
}
