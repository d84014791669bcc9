package api_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/api"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/testenv"
)

// slowClaims is an idempotency store whose Claim, while armed, waits until
// the request's client has gone and then behaves as a database driver may
// on a cancelled call: the claim commits, the caller is told "cancelled".
type slowClaims struct {
	api.IdempotencyStore
	armed   atomic.Bool
	req     atomic.Pointer[context.Context] // the request being claimed for
	waiting chan struct{}                   // closed when the armed Claim starts waiting
	settled chan struct{}                   // closed when it has claimed
}

func (s *slowClaims) Claim(ctx context.Context, scope, key string, hash []byte, method, path string, now time.Time) (bool, db.IdempotencyRecord, error) {
	if !s.armed.Swap(false) {
		return s.IdempotencyStore.Claim(ctx, scope, key, hash, method, path, now)
	}
	close(s.waiting)
	<-(*s.req.Load()).Done()
	claimed, rec, err := s.IdempotencyStore.Claim(context.WithoutCancel(ctx), scope, key, hash, method, path, now)
	close(s.settled)
	if ctx.Err() != nil {
		return false, db.IdempotencyRecord{}, ctx.Err()
	}
	return claimed, rec, err
}

// A handler panic, a client hanging up while the key is claimed and a
// handler that gives up with its client: none leaves the key answering
// 409 "in progress"; the retry with the same key runs.
func TestIdempotencyClaimNeverOutlivesItsRequest(t *testing.T) {
	t.Parallel()
	tdb := testenv.NewDB(t, db.RoleTEG)
	store := &slowClaims{IdempotencyStore: db.NewIdempotencyStore(tdb.Pool), waiting: make(chan struct{}), settled: make(chan struct{})}
	e := newEngine(t, 1<<10)
	var panicNext, blockNext atomic.Bool
	var ran atomic.Int64
	handlerWaiting := make(chan struct{}, 1)
	e.Use(func(c *gin.Context) {
		ctx := c.Request.Context()
		store.req.Store(&ctx)
		api.SetPrincipal(c, api.Principal{Subject: "agent-1", Scopes: []string{"agent"}})
	})
	e.POST("/pay", api.Idempotency(store, true, time.Now), func(c *gin.Context) {
		if panicNext.Swap(false) {
			panic("handler bug")
		}
		if blockNext.Swap(false) {
			handlerWaiting <- struct{}{}
			<-c.Request.Context().Done()
			return // gives up without an answer: its client is gone
		}
		c.JSON(201, gin.H{"run": ran.Add(1)})
	})
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	post := func(ctx context.Context, key string) (int, error) {
		req, err := http.NewRequestWithContext(ctx, "POST", srv.URL+"/pay", strings.NewReader(`{"name":"a"}`))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(api.HeaderIdempotencyKey, key)
		res, err := srv.Client().Do(req)
		if err != nil {
			return 0, err
		}
		res.Body.Close()
		return res.StatusCode, nil
	}
	// hangUp sends a request and drops the connection once ready says the
	// server reached the point under test.
	hangUp := func(key string, ready <-chan struct{}) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { _, err := post(ctx, key); done <- err }()
		select {
		case <-ready:
		case <-time.After(10 * time.Second):
			t.Fatal("the server never reached the point under test")
		}
		cancel()
		require.True(t, errors.Is(<-done, context.Canceled))
	}
	// retried answers the same key again until the server has settled the
	// abandoned request, and returns the status of the answer.
	retried := func(key string) int {
		var status int
		require.Eventually(t, func() bool {
			var err error
			status, err = post(context.Background(), key)
			require.NoError(t, err)
			return status != http.StatusConflict
		}, 5*time.Second, 20*time.Millisecond, "key %s still answers 409", key)
		return status
	}

	t.Run("panic", func(t *testing.T) {
		panicNext.Store(true)
		status, err := post(context.Background(), "k-panic")
		require.NoError(t, err)
		require.Equal(t, http.StatusInternalServerError, status)
		status, err = post(context.Background(), "k-panic")
		require.NoError(t, err)
		require.Equal(t, http.StatusCreated, status, "the claim was released: the retry runs")
	})

	t.Run("client gone during the claim", func(t *testing.T) {
		before := ran.Load()
		store.armed.Store(true)
		hangUp("k-claim", store.waiting)
		<-store.settled // the server noticed and the claim is in the table
		require.Equal(t, http.StatusCreated, retried("k-claim"))
		require.Equal(t, before+1, ran.Load(), "the abandoned request ran nothing")
	})

	t.Run("client gone during the handler", func(t *testing.T) {
		blockNext.Store(true)
		hangUp("k-handler", handlerWaiting)
		require.Equal(t, http.StatusCreated, retried("k-handler"), "no empty answer stored for replay")
	})
}
