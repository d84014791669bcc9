package db

import (
	"bytes"
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/theprotocol-dev/theprotocol/db/internal/commondb"
)

// IdempotencyRecord is a stored request/response pair.
type IdempotencyRecord struct {
	RequestHash []byte
	Method      string
	Path        string
	StatusCode  int // 0 while the request is in flight
	Body        []byte
	CreatedAt   time.Time
}

// IdempotencyStore keeps Idempotency-Key records in a role database. Each
// call is its own short statement: the claim row is what makes concurrent
// duplicates apply once, while business operations carry their own unique
// keys so a crash between commit and Complete cannot apply them twice.
type IdempotencyStore struct {
	pool *pgxpool.Pool
	q    *commondb.Queries
}

// NewIdempotencyStore returns a store on pool.
func NewIdempotencyStore(pool *pgxpool.Pool) *IdempotencyStore {
	return &IdempotencyStore{pool: pool, q: commondb.New()}
}

// Claim records (scope, key) as in flight. It returns claimed=false and the
// existing record when the key is already known.
func (s *IdempotencyStore) Claim(ctx context.Context, scope, key string, hash []byte, method, path string, now time.Time) (claimed bool, existing IdempotencyRecord, err error) {
	// The record can vanish between the two statements: a claim released
	// (its request failed or was abandoned) or swept. The key is then free,
	// exactly as if this request had come a moment later: claim again.
	for attempt := 0; ; attempt++ {
		_, err = s.q.IdempotencyKeyClaim(ctx, s.pool, commondb.IdempotencyKeyClaimParams{
			Scope: scope, Key: key, RequestHash: hash, Method: method, Path: path, Now: now,
		})
		if err == nil {
			return true, IdempotencyRecord{}, nil
		}
		if !IsNotFound(err) {
			return false, IdempotencyRecord{}, err
		}
		row, err := s.q.IdempotencyKeyGet(ctx, s.pool, commondb.IdempotencyKeyGetParams{Scope: scope, Key: key})
		if IsNotFound(err) && attempt < 2 {
			continue
		}
		if err != nil {
			return false, IdempotencyRecord{}, err
		}
		rec := IdempotencyRecord{
			RequestHash: row.RequestHash, Method: row.Method, Path: row.Path,
			Body: row.ResponseBody, CreatedAt: row.CreatedAt,
		}
		if row.StatusCode != nil {
			rec.StatusCode = int(*row.StatusCode)
		}
		if rec.Abandoned(hash, now) {
			_, err := s.q.IdempotencyKeyTakeOver(ctx, s.pool, commondb.IdempotencyKeyTakeOverParams{
				Scope: scope, Key: key, RequestHash: hash, Now: now, StaleBefore: now.Add(-StaleClaimAfter),
			})
			if err == nil {
				return true, IdempotencyRecord{}, nil
			}
			if !IsNotFound(err) {
				return false, IdempotencyRecord{}, err
			}
			// Completed, released or taken over meanwhile: read it again.
			if attempt < 2 {
				continue
			}
		}
		return false, rec, nil
	}
}

// StaleClaimAfter is how long an in-flight claim holds its key against a
// retry of the same request. Past the API server's write timeout the
// request that made it can no longer answer its client; most often its
// process died (with several processes behind one address the retry lands
// on another). The retry then takes the claim over and runs, which the
// business keys derived from the Idempotency-Key make safe. Before, the
// key answered 409 "in progress" until the sweeper dropped the claim.
const StaleClaimAfter = time.Minute

// Abandoned reports whether r is an in-flight claim of the request hashed
// hash older than StaleClaimAfter at now: a retry of that request may take
// it over.
func (r IdempotencyRecord) Abandoned(hash []byte, now time.Time) bool {
	return r.StatusCode == 0 && bytes.Equal(r.RequestHash, hash) && r.CreatedAt.Before(now.Add(-StaleClaimAfter))
}

// Complete stores the final response of a claimed key.
func (s *IdempotencyStore) Complete(ctx context.Context, scope, key string, status int, body []byte, now time.Time) error {
	code := int32(status)
	return s.q.IdempotencyKeyComplete(ctx, s.pool, commondb.IdempotencyKeyCompleteParams{
		Scope: scope, Key: key, StatusCode: &code, ResponseBody: body, Now: now,
	})
}

// Release drops an in-flight claim so the client can retry with the key.
func (s *IdempotencyStore) Release(ctx context.Context, scope, key string) error {
	return s.q.IdempotencyKeyRelease(ctx, s.pool, commondb.IdempotencyKeyReleaseParams{Scope: scope, Key: key})
}

// Sweep deletes up to maxRows records created before cutoff and returns how
// many it deleted.
func (s *IdempotencyStore) Sweep(ctx context.Context, cutoff time.Time, maxRows int32) (int64, error) {
	return s.q.IdempotencyKeySweep(ctx, s.pool, commondb.IdempotencyKeySweepParams{Cutoff: cutoff, MaxRows: maxRows})
}
