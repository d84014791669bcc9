package ledgerapi_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/api"
	"github.com/theprotocol-dev/theprotocol/api/ledgerapi"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/gctune"
	"github.com/theprotocol-dev/theprotocol/governance"
	"github.com/theprotocol-dev/theprotocol/proposals"
)

// Votes cast over HTTP, next to the transfer figure of the same run and
// wiring (loopback HTTP, JWT auth with the token cache, Idempotency-Key
// records group-committed, one proposal open with 1,024 staked voters):
//
//	go test ./api/ledgerapi -run '^$' -bench HTTPVotes -benchtime 5000x
//
// Each voter alternates yes and no (the same vote twice is a 409), so
// every request changes a vote and writes VoteCast.
func BenchmarkHTTPVotes(b *testing.B) {
	defer gctune.Tune(nil)()
	hb := setupHTTPBench(b)
	ctx := context.Background()
	for i, id := range hb.ids {
		_, err := hb.store.Stake(ctx, ledgerstore.StakeRequest{Owner: id, Tier: "365d", AmountUnits: 100 * avt, IdempotencyKey: fmt.Sprintf("st-%d", i)})
		require.NoError(b, err)
	}
	p, err := hb.store.CreateProposal(ctx, ledgerstore.ProposalInput{ID: uuid.New(), Proposer: hb.ids[0], MinPower: 1, VetoWindow: time.Hour,
		Draft: governance.Draft{Title: "bench", Window: 24 * time.Hour, QuorumBps: 100, ThresholdBps: 5000}})
	require.NoError(b, err)

	b.Run("transfers_groupcommit", func(b *testing.B) {
		gc := hb.store.NewGroupCommitter(ledgerstore.GroupCommitOptions{})
		defer gc.Close()
		hb.run(b, hb.serverWith(b, gc, serverOpts{idem: "batched"}))
	})
	b.Run("votes", func(b *testing.B) {
		batcher := ledgerstore.NewIdempotencyBatcher(openPool(b, hb.dsn))
		b.Cleanup(batcher.Close)
		e := api.NewEngine(api.EngineOptions{Log: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(), MaxBodyBytes: 64 << 10})
		ledgerapi.NewGovernance(ledgerapi.GovernanceOptions{
			Store: hb.store, Idempotency: batcher, Auth: hb.auth.middleware(0),
			Proposals: &proposals.Service{Ledger: hb.store, Registry: "alpha-main", Limits: governance.DefaultLimits},
		}).Mount(e.Group("/api/v1"))
		srv := httptest.NewServer(e)
		b.Cleanup(srv.Close)
		hb.runVotes(b, srv, p.ID.String())
	})
}

func (hb *httpBench) runVotes(b *testing.B, srv *httptest.Server, proposal string) {
	clients := benchClients()
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 2 * clients, MaxIdleConnsPerHost: 2 * clients}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	run := uuid.NewString()[:8]
	var next, failed, conflicts atomic.Int64
	lat := make([][]time.Duration, clients)
	var mu sync.Mutex
	round := make([]int, len(hb.ids)) // votes cast per voter: alternates the choice
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				v := int(i) % len(hb.ids)
				mu.Lock()
				choice := [2]string{"yes", "no"}[round[v]%2]
				round[v]++
				mu.Unlock()
				req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/governance/proposals/"+proposal+"/vote", bytes.NewBufferString(`{"choice":"`+choice+`"}`))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+hb.tokens[v])
				req.Header.Set(api.HeaderIdempotencyKey, fmt.Sprintf("v-%s-%d", run, i))
				t0 := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				lat[w] = append(lat[w], time.Since(t0))
				switch {
				case err == nil && resp.StatusCode == http.StatusOK:
				case err == nil && resp.StatusCode == http.StatusConflict:
					// Two requests of one voter overtook each other.
					conflicts.Add(1)
				default:
					if failed.Add(1) == 1 {
						b.Logf("first failure: %v %v", err, resp)
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
		return float64(all[min(len(all)-1, int(float64(len(all))*p))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "votes/s")
	b.ReportMetric(pct(0.50), "p50_ms")
	b.ReportMetric(pct(0.99), "p99_ms")
	b.ReportMetric(float64(conflicts.Load()), "conflicts")
	b.ReportMetric(0, "ns/op")
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d requests failed", f)
	}
}
