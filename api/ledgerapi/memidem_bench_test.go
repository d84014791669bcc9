package ledgerapi_test

import (
	"context"
	"sync"
	"time"

	"github.com/theprotocol-dev/theprotocol/db"
)

// memIdem is an in-memory api.IdempotencyStore, used only by the benchmark
// to show how much of the end-to-end cost the idempotency records take.
type memIdem struct {
	mu sync.Mutex
	m  map[[2]string]*db.IdempotencyRecord
}

func (s *memIdem) Claim(_ context.Context, scope, key string, hash []byte, method, path string, now time.Time) (bool, db.IdempotencyRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := [2]string{scope, key}
	if r, ok := s.m[k]; ok {
		return false, *r, nil
	}
	s.m[k] = &db.IdempotencyRecord{RequestHash: hash, Method: method, Path: path, CreatedAt: now}
	return true, db.IdempotencyRecord{}, nil
}

func (s *memIdem) Complete(_ context.Context, scope, key string, status int, body []byte, _ time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.m[[2]string{scope, key}]; ok {
		r.StatusCode, r.Body = status, body
	}
	return nil
}

func (s *memIdem) Release(_ context.Context, scope, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, [2]string{scope, key})
	return nil
}
