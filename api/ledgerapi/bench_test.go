package ledgerapi_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/api"
	"github.com/theprotocol-dev/theprotocol/api/ledgerapi"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/testenv"
)

// End-to-end benchmark: HTTP/1.1 over loopback TCP → Gin engine (request
// IDs, metrics, access log, body limit) → bearer-token auth → Idempotency
// middleware (claim + stored response in Postgres) → POST /api/v1/transfers
// → ledger store, every request with its own Idempotency-Key:
//
//	go test ./api/ledgerapi -run '^$' -bench HTTPTransfers -benchtime 20000x
//
// Auth here verifies an Ed25519 signature per request (the CPU cost of the
// registry's EdDSA JWTs) but does no revocation lookup; the registry's
// middleware adds that.

const benchAccounts = 1024

// benchClients is the number of concurrent HTTP clients: 256, or
// LEDGER_BENCH_CLIENTS (fewer clients trade throughput for latency).
func benchClients() int {
	if n, err := strconv.Atoi(os.Getenv("LEDGER_BENCH_CLIENTS")); err == nil && n > 0 {
		return n
	}
	return 256
}

type benchAuth struct {
	pub  ed25519.PublicKey
	priv ed25519.PrivateKey
}

func (a benchAuth) token(subject string) string {
	sig := ed25519.Sign(a.priv, []byte(subject))
	return base64.RawURLEncoding.EncodeToString([]byte(subject)) + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func (a benchAuth) middleware(c *gin.Context) {
	tok, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
	sub64, sig64, ok2 := strings.Cut(tok, ".")
	sub, err1 := base64.RawURLEncoding.DecodeString(sub64)
	sig, err2 := base64.RawURLEncoding.DecodeString(sig64)
	if !ok || !ok2 || err1 != nil || err2 != nil || !ed25519.Verify(a.pub, sub, sig) {
		c.AbortWithStatus(http.StatusUnauthorized)
		return
	}
	api.SetPrincipal(c, api.Principal{Subject: string(sub), Scopes: []string{api.ScopeAgent}})
	c.Next()
}

type httpBench struct {
	store  *ledgerstore.Store
	dsn    string
	ids    []string
	tokens []string
	auth   benchAuth
}

func setupHTTPBench(b *testing.B) *httpBench {
	tdb := testenv.NewDB(b, db.RoleTEG)
	pool := openPool(b, tdb.DSN)
	s := ledgerstore.New(pool, ledgerstore.Options{Frame: "alpha", Registry: "alpha-main", Mainframe: true})
	ctx := context.Background()
	_, err := s.Genesis(ctx, 1_000_000_000*avt)
	require.NoError(b, err)
	pub, priv, err := ed25519.GenerateKey(nil)
	require.NoError(b, err)
	hb := &httpBench{store: s, dsn: tdb.DSN, ids: make([]string, benchAccounts), tokens: make([]string, benchAccounts), auth: benchAuth{pub, priv}}
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < benchAccounts; i += 16 {
				id := "did:theprotocol:" + uuid.New().String()
				_, _, err := s.OpenAccount(ctx, id, ledger.KindAgent)
				if err == nil {
					_, err = s.Grant(ctx, ledgerstore.SupplyRequest{To: id, AmountUnits: 100_000 * avt, Reason: "bench", Actor: "admin:bench", IdempotencyKey: fmt.Sprintf("fund-%d", i)})
				}
				if err != nil {
					panic(err)
				}
				hb.ids[i], hb.tokens[i] = id, hb.auth.token(id)
			}
		}()
	}
	wg.Wait()
	return hb
}

func openPool(b *testing.B, dsn string) *pgxpool.Pool {
	pool, err := db.Open(context.Background(), dsn, db.PoolOptions{MaxConns: 48, ApplicationName: "bench"})
	require.NoError(b, err)
	b.Cleanup(pool.Close)
	return pool
}

// server starts the engine on loopback. idemAsync writes the idempotency
// records with synchronous_commit=off (see BenchmarkHTTPTransfers).
func (hb *httpBench) server(b *testing.B, tr ledgerapi.Transferer, idemMode string) *httptest.Server {
	var idem api.IdempotencyStore
	switch idemMode {
	case "sync":
		idem = db.NewIdempotencyStore(openPool(b, hb.dsn))
	case "async":
		sep := "?"
		if strings.Contains(hb.dsn, "?") {
			sep = "&"
		}
		idem = db.NewIdempotencyStore(openPool(b, hb.dsn+sep+"synchronous_commit=off"))
	case "batched":
		batcher := ledgerstore.NewIdempotencyBatcher(openPool(b, hb.dsn))
		b.Cleanup(batcher.Close)
		idem = batcher
	case "memory":
		idem = &memIdem{m: map[[2]string]*db.IdempotencyRecord{}}
	}
	e := api.NewEngine(api.EngineOptions{Log: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(), MaxBodyBytes: 64 << 10})
	ledgerapi.New(ledgerapi.Options{Store: hb.store, Transfers: tr, Idempotency: idem, Auth: hb.auth.middleware}).Mount(e.Group("/api/v1"))
	srv := httptest.NewServer(e)
	b.Cleanup(srv.Close)
	return srv
}

func (hb *httpBench) run(b *testing.B, srv *httptest.Server) {
	clients := benchClients()
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 2 * clients, MaxIdleConnsPerHost: 2 * clients}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	run := uuid.NewString()[:8]
	var next, failed atomic.Int64
	lat := make([][]time.Duration, clients)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				from := rng.IntN(len(hb.ids))
				to := (from + 1 + rng.IntN(len(hb.ids)-1)) % len(hb.ids)
				body := fmt.Sprintf(`{"to":%q,"amount_units":%d}`, hb.ids[to], 1000+rng.IntN(1000))
				req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/transfers", bytes.NewBufferString(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+hb.tokens[from])
				req.Header.Set(api.HeaderIdempotencyKey, fmt.Sprintf("h-%s-%d", run, i))
				t0 := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				lat[w] = append(lat[w], time.Since(t0))
				if (err != nil || resp.StatusCode != http.StatusCreated) && failed.Add(1) == 1 {
					if err != nil {
						b.Logf("first failure: %v", err)
					} else {
						b.Logf("first failure: HTTP %d", resp.StatusCode)
					}
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[min(len(all)-1, int(float64(len(all))*p))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "transfers/s")
	b.ReportMetric(pct(0.50), "p50_ms")
	b.ReportMetric(pct(0.99), "p99_ms")
	b.ReportMetric(0, "ns/op")
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d requests failed", f)
	}
}

// BenchmarkHTTPTransfers measures durable transfers end to end:
//
//   - groupcommit: the production wiring (GroupCommitter, 2 workers);
//   - groupcommit_idem_batched: the same with ledgerstore.IdempotencyBatcher
//     (claims and stored responses group-committed; fully durable) — the
//     recommended production wiring;
//   - groupcommit_idem_async: the same, with the idempotency records written
//     with synchronous_commit=off. Safe for the ledger routes: every one of
//     them also carries a business idempotency key committed durably with
//     the money, so a claim or stored response lost in a crash only means a
//     retry re-runs the handler, which replays the committed result;
//   - groupcommit_idem_memory: idempotency records in memory (NOT durable;
//     a diagnostic showing what the records cost, not a deployable mode);
//   - direct: one transaction per transfer (no group commit).
func BenchmarkHTTPTransfers(b *testing.B) {
	hb := setupHTTPBench(b)
	b.Run("groupcommit", func(b *testing.B) {
		gc := hb.store.NewGroupCommitter(ledgerstore.GroupCommitOptions{})
		defer gc.Close()
		hb.run(b, hb.server(b, gc, "sync"))
	})
	b.Run("groupcommit_idem_batched", func(b *testing.B) {
		gc := hb.store.NewGroupCommitter(ledgerstore.GroupCommitOptions{})
		defer gc.Close()
		hb.run(b, hb.server(b, gc, "batched"))
	})
	b.Run("groupcommit_idem_async", func(b *testing.B) {
		gc := hb.store.NewGroupCommitter(ledgerstore.GroupCommitOptions{})
		defer gc.Close()
		hb.run(b, hb.server(b, gc, "async"))
	})
	b.Run("groupcommit_idem_memory", func(b *testing.B) {
		gc := hb.store.NewGroupCommitter(ledgerstore.GroupCommitOptions{})
		defer gc.Close()
		hb.run(b, hb.server(b, gc, "memory"))
	})
	b.Run("direct", func(b *testing.B) {
		hb.run(b, hb.server(b, hb.store, "sync"))
	})
}
