package registryapi

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/theprotocol-dev/theprotocol/api"
	"github.com/theprotocol-dev/theprotocol/db"
)

// sealedIdempotency wraps the idempotency store so stored responses are
// encrypted (AES-256-GCM, bound to scope and key as additional data).
// Registry responses carry secrets that are shown exactly once (API keys,
// client secrets, bootstrap tokens); replaying them to a retried request is
// what Idempotency-Key promises, but they must never sit in the database in
// clear.
type sealedIdempotency struct {
	inner api.IdempotencyStore
	aead  cipher.AEAD
}

func newSealedIdempotency(inner api.IdempotencyStore, key []byte) (*sealedIdempotency, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("idempotency sealing key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealedIdempotency{inner: inner, aead: aead}, nil
}

const sealVersion = 1

func aad(scope, key string) []byte { return []byte(scope + "\x00" + key) }

func (s *sealedIdempotency) seal(scope, key string, body []byte) []byte {
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce)
	out := append([]byte{sealVersion}, nonce...)
	return s.aead.Seal(out, nonce, body, aad(scope, key))
}

var errUnsealable = errors.New("stored idempotent response cannot be decrypted (signing key changed?)")

func (s *sealedIdempotency) open(scope, key string, sealed []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < 1+n || sealed[0] != sealVersion {
		return nil, errUnsealable
	}
	body, err := s.aead.Open(nil, sealed[1:1+n], sealed[1+n:], aad(scope, key))
	if err != nil {
		return nil, errUnsealable
	}
	return body, nil
}

// Claim implements api.IdempotencyStore, decrypting a stored response.
func (s *sealedIdempotency) Claim(ctx context.Context, scope, key string, hash []byte, method, path string, now time.Time) (bool, db.IdempotencyRecord, error) {
	claimed, rec, err := s.inner.Claim(ctx, scope, key, hash, method, path, now)
	if err != nil || claimed || rec.StatusCode == 0 {
		return claimed, rec, err
	}
	body, err := s.open(scope, key, rec.Body)
	if err != nil {
		return false, db.IdempotencyRecord{}, err
	}
	rec.Body = body
	return false, rec, nil
}

// Complete implements api.IdempotencyStore, encrypting the response.
func (s *sealedIdempotency) Complete(ctx context.Context, scope, key string, status int, body []byte, now time.Time) error {
	return s.inner.Complete(ctx, scope, key, status, s.seal(scope, key, body), now)
}

// Release implements api.IdempotencyStore.
func (s *sealedIdempotency) Release(ctx context.Context, scope, key string) error {
	return s.inner.Release(ctx, scope, key)
}
