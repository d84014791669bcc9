package ledgerapi_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
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
	"github.com/theprotocol-dev/theprotocol/auth"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/gctune"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/payments"
	"github.com/theprotocol-dev/theprotocol/registry"
	"github.com/theprotocol-dev/theprotocol/testenv"
)

// End-to-end benchmark: HTTP/1.1 over loopback TCP → Gin engine (request
// IDs, metrics, access log, body limit) → bearer-token auth → Idempotency
// middleware (claim + stored response in Postgres) → POST /api/v1/transfers
// → ledger store, every request with its own Idempotency-Key:
//
//	go test ./api/ledgerapi -run '^$' -bench HTTPTransfers -benchtime 20000x
//
// Auth is the registry's: EdDSA JWTs (auth.Signer) checked by
// auth.Middleware with a Verifier, whose token cache verifies each client's
// token once (the _nocache variant verifies every request); no revocation
// lookup (the registry's StateChecker adds one indexed query per request).

const benchAccounts = 1024

func envInt(name string) int {
	n, _ := strconv.Atoi(os.Getenv(name))
	return n
}

// benchClients is the number of concurrent HTTP clients: 256, or
// LEDGER_BENCH_CLIENTS (fewer clients trade throughput for latency).
func benchClients() int {
	if n, err := strconv.Atoi(os.Getenv("LEDGER_BENCH_CLIENTS")); err == nil && n > 0 {
		return n
	}
	return 256
}

const (
	benchIssuer   = "spiffe://alpha.theprotocol.test/registry/alpha-main"
	benchAudience = "theprotocol:alpha"
)

type benchAuth struct {
	signer *auth.Signer
}

func (a benchAuth) token(subject string) string {
	tok, _, err := a.signer.Issue(subject, registry.ScopeAgent, 1)
	if err != nil {
		panic(err)
	}
	return tok
}

// middleware returns the registry's auth middleware; cacheSize as in
// auth.VerifierOptions.CacheSize.
func (a benchAuth) middleware(cacheSize int) gin.HandlerFunc {
	v, err := auth.NewVerifier(auth.VerifierOptions{Keys: []ed25519.PublicKey{a.signer.PublicKey()}, Issuer: benchIssuer, Audience: benchAudience, CacheSize: cacheSize})
	if err != nil {
		panic(err)
	}
	return auth.Middleware(v, nil)
}

type httpBench struct {
	store  *ledgerstore.Store
	pool   *pgxpool.Pool
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
	_, priv, err := ed25519.GenerateKey(nil)
	require.NoError(b, err)
	signer, err := auth.NewSigner(auth.SignerOptions{Key: priv, Issuer: benchIssuer, Audience: benchAudience, Registry: "alpha-main", Frame: "alpha", TTL: time.Hour})
	require.NoError(b, err)
	hb := &httpBench{store: s, pool: pool, dsn: tdb.DSN, ids: make([]string, benchAccounts), tokens: make([]string, benchAccounts), auth: benchAuth{signer}}
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

// serverOpts vary the wiring of one sub-benchmark.
type serverOpts struct {
	idem    string // sync, async, batched or memory
	noCache bool   // verify every token's signature (no token cache)
	records bool   // ledgerapi.Options.RecordTransferResponses
}

// serverWith starts the engine on loopback. idem "async" writes the
// idempotency records with synchronous_commit=off.
func (hb *httpBench) serverWith(b *testing.B, tr payments.Transferer, so serverOpts) *httptest.Server {
	var idem api.IdempotencyStore
	switch so.idem {
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
	cacheSize := 0
	if so.noCache {
		cacheSize = -1
	}
	ledgerapi.New(ledgerapi.Options{Store: hb.store, Payments: &payments.Service{Ledger: hb.store, Transfers: tr}, Idempotency: idem, Auth: hb.auth.middleware(cacheSize),
		RecordTransferResponses: so.records}).Mount(e.Group("/api/v1"))
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
	cpu := testenv.StartCPUMeter(hb.pool)
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
	cpu.Report(b, len(all))
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d requests failed", f)
	}
}

// BenchmarkHTTPTransfers measures durable transfers end to end:
//
//   - groupcommit: the production wiring: GroupCommitter (2 workers), the
//     transfer row as the request's idempotency record (postTransfer),
//     ledgerstore.IdempotencyBatcher for the records of other responses,
//     and the token cache;
//   - groupcommit_records: the same with POST /transfers behind the
//     generic api.Idempotency records (claim + stored response,
//     group-committed by the IdempotencyBatcher): the previous wiring;
//   - groupcommit_records_nocache: that, verifying every token's signature
//     too (the wiring before this branch);
//   - groupcommit_records_memory: generic records kept in memory (NOT
//     durable; a diagnostic showing what the records cost);
//   - direct: one transaction per transfer (no group commit).
func BenchmarkHTTPTransfers(b *testing.B) {
	defer gctune.Tune(nil)() // as a node runs
	hb := setupHTTPBench(b)
	for _, tc := range []struct {
		name string
		so   serverOpts
	}{
		{"groupcommit", serverOpts{idem: "batched"}},
		{"groupcommit_records", serverOpts{idem: "batched", records: true}},
		{"groupcommit_records_nocache", serverOpts{idem: "batched", records: true, noCache: true}},
		{"groupcommit_records_memory", serverOpts{idem: "memory", records: true}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			// LEDGER_BENCH_WORKERS / LEDGER_BENCH_BATCH override the
			// group-commit defaults for tuning runs.
			gc := hb.store.NewGroupCommitter(ledgerstore.GroupCommitOptions{Workers: envInt("LEDGER_BENCH_WORKERS"), MaxBatch: envInt("LEDGER_BENCH_BATCH")})
			defer gc.Close()
			hb.run(b, hb.serverWith(b, gc, tc.so))
		})
	}
	b.Run("direct", func(b *testing.B) {
		hb.run(b, hb.serverWith(b, hb.store, serverOpts{idem: "sync"}))
	})
	// floor_nostore: the same engine, middleware, handler and clients with
	// a Transferer that does no I/O (noStore). Not a ledger: it is what
	// HTTP alone costs on this machine, the ceiling of any end-to-end
	// figure here whatever the store does.
	b.Run("floor_nostore", func(b *testing.B) {
		hb.run(b, hb.serverWith(b, noStore{}, serverOpts{idem: "memory"}))
	})
}

// noStore answers every transfer at the base fee without touching a
// database (benchmark floor only).
type noStore struct{}

func (noStore) Transfer(_ context.Context, req ledgerstore.TransferRequest) (ledgerstore.Transfer, error) {
	fee, err := ledger.TransferFee(req.AmountUnits, ledger.BaseFeeBps)
	if err != nil {
		return ledgerstore.Transfer{}, err
	}
	return ledgerstore.Transfer{ID: uuid.Must(uuid.NewV7()), From: req.From, To: req.To, AmountUnits: req.AmountUnits,
		FeeUnits: fee.FeeUnits, NetUnits: fee.NetUnits, FeeBps: fee.Bps, Memo: req.Memo,
		IdempotencyKey: req.IdempotencyKey, CreatedAt: time.Now(), RequestHash: req.RequestHash}, nil
}
