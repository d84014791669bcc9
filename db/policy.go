package db

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/theprotocol-dev/theprotocol/db/internal/commondb"
	"github.com/theprotocol-dev/theprotocol/events"
)

// PolicyQuerier is a pool or a tx.
type PolicyQuerier = commondb.DBTX

// Policy is an in-memory copy of a database's emission_policy table,
// reloaded on demand. Reads are lock-free apart from an RWMutex, so checking
// it on every outbox write costs nanoseconds, not a query.
type Policy struct {
	mu       sync.RWMutex
	rules    map[string]events.Permission
	loadedAt time.Time
}

// LoadPolicy reads the table.
func LoadPolicy(ctx context.Context, q PolicyQuerier) (*Policy, error) {
	p := &Policy{}
	if err := p.Reload(ctx, q); err != nil {
		return nil, err
	}
	return p, nil
}

// Reload replaces the rules with the table's current content.
func (p *Policy) Reload(ctx context.Context, q PolicyQuerier) error {
	rows, err := commondb.New().EmissionPolicyList(ctx, q)
	if err != nil {
		return fmt.Errorf("load emission policy: %w", err)
	}
	rules := make(map[string]events.Permission, len(rows))
	for _, r := range rows {
		rules[r.EventType] = events.Permission{
			FromTEG: r.EmitFromTeg, FromRegistry: r.EmitFromRegistry,
			FromEventStore: r.EmitFromEventstore, FromWorker: r.EmitFromWorker,
		}
	}
	p.mu.Lock()
	p.rules, p.loadedAt = rules, time.Now()
	p.mu.Unlock()
	return nil
}

// Check returns nil when source may author eventType, and a descriptive
// error (unknown type, or not allowed for source) otherwise.
func (p *Policy) Check(source, eventType string) error {
	p.mu.RLock()
	perm, ok := p.rules[eventType]
	p.mu.RUnlock()
	if !ok {
		return fmt.Errorf("emission policy: unknown event type %q", eventType)
	}
	if !perm.Allows(source) {
		return fmt.Errorf("emission policy: source %q may not emit %s", source, eventType)
	}
	return nil
}

// Rules returns a copy of the rules.
func (p *Policy) Rules() map[string]events.Permission {
	p.mu.RLock()
	defer p.mu.RUnlock()
	out := make(map[string]events.Permission, len(p.rules))
	for k, v := range p.rules {
		out[k] = v
	}
	return out
}

// Guard adapts the policy to OutboxWriter: a refused event fails the
// transaction, because a component emitting what it must not is a bug.
func (p *Policy) Guard() EmissionGuard {
	return func(_ context.Context, _ pgx.Tx, source, eventType string) error {
		if err := p.Check(source, eventType); err != nil {
			return fmt.Errorf("outbox refused: %w", err)
		}
		return nil
	}
}
