package db

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/theprotocol-dev/theprotocol/db/internal/commondb"
	"github.com/theprotocol-dev/theprotocol/events"
)

// PolicyRule is one emission_policy row. It is also the payload of
// EmissionPolicyChanged, so its JSON form is part of the event contract.
type PolicyRule struct {
	EventType          string    `json:"event_type"`
	EmitFromTEG        bool      `json:"emit_from_teg"`
	EmitFromRegistry   bool      `json:"emit_from_registry"`
	EmitFromEventStore bool      `json:"emit_from_eventstore"`
	EmitFromWorker     bool      `json:"emit_from_worker"`
	UpdatedAt          time.Time `json:"updated_at"`
	UpdatedBy          string    `json:"updated_by"`
}

func ruleFromRow(r commondb.EmissionPolicy) PolicyRule {
	return PolicyRule{r.EventType, r.EmitFromTeg, r.EmitFromRegistry, r.EmitFromEventstore, r.EmitFromWorker, r.UpdatedAt, r.UpdatedBy}
}

// PolicyStore lists and edits the emission_policy table of one database.
// An edit and its EmissionPolicyChanged event commit together, so every
// consumer of the topic learns of it (and reloads its Policy).
type PolicyStore struct {
	store  *Store
	outbox *OutboxWriter
	q      *commondb.Queries
}

// NewPolicyStore returns the policy store of s's database; outbox authors
// the change events.
func NewPolicyStore(s *Store, outbox *OutboxWriter) *PolicyStore {
	return &PolicyStore{store: s, outbox: outbox, q: commondb.New()}
}

// List returns every rule, ordered by event type.
func (p *PolicyStore) List(ctx context.Context) ([]PolicyRule, error) {
	rows, err := p.q.EmissionPolicyList(ctx, p.store.Pool)
	if err != nil {
		return nil, err
	}
	out := make([]PolicyRule, len(rows))
	for i, r := range rows {
		out[i] = ruleFromRow(r)
	}
	return out, nil
}

// Put replaces eventType's rule with perm, recording who changed it and
// when, and writes EmissionPolicyChanged in the same transaction.
func (p *PolicyStore) Put(ctx context.Context, eventType string, perm events.Permission, by string, now time.Time) (PolicyRule, error) {
	var rule PolicyRule
	err := p.store.Tx(ctx, func(tx pgx.Tx) error {
		r, err := p.q.EmissionPolicyUpsert(ctx, tx, commondb.EmissionPolicyUpsertParams{
			EventType: eventType, EmitFromTeg: perm.FromTEG, EmitFromRegistry: perm.FromRegistry,
			EmitFromEventstore: perm.FromEventStore, EmitFromWorker: perm.FromWorker, Now: now, UpdatedBy: by,
		})
		if err != nil {
			return err
		}
		rule = ruleFromRow(r)
		return p.emitChanged(ctx, tx, rule)
	})
	if err != nil {
		return PolicyRule{}, err
	}
	return rule, nil
}

func (p *PolicyStore) emitChanged(ctx context.Context, tx pgx.Tx, rule PolicyRule) error {
	key := fmt.Sprintf("emission-policy-%s-%d", rule.EventType, rule.UpdatedAt.UnixNano())
	env, err := events.New(events.TypeEmissionPolicyChanged, key, rule.EventType, rule.UpdatedAt)
	if err != nil {
		return err
	}
	if env.Payload, err = json.Marshal(rule); err != nil {
		return err
	}
	return p.outbox.Write(ctx, tx, env)
}
