package registryapi_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/theprotocol-dev/theprotocol/api/registryapi"
)

// BenchmarkAuthMiddleware is the full per-request cost of authentication
// in-process (no network): bearer parsing, Ed25519 verification, claims
// checks and the one-query state check (revocation / credential generation)
// against the real registry database.
//
//	go test ./api/registryapi -run '^$' -bench BenchmarkAuthMiddleware -benchtime 3s
func BenchmarkAuthMiddleware(b *testing.B) {
	n := startNode(b, nil)
	_, _, devTok := n.developer(b)
	_, clientID, secret := n.agent(b, devTok, nil)
	tok := n.agentToken(b, clientID, secret)
	e := gin.New()
	e.GET("/x", n.H.AuthMiddleware(), func(c *gin.Context) { c.Status(http.StatusNoContent) })
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w := httptest.NewRecorder()
			r := httptest.NewRequest("GET", "/x", nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			e.ServeHTTP(w, r)
			if w.Code != http.StatusNoContent {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
		}
	})
}

// BenchmarkAgentRegistrationsOverAPI measures agent registrations through
// the API over real HTTP on loopback: each op is POST /bootstrap-tokens then
// POST /agents (token consume, agent insert, AgentRegistered outbox row, one
// commit each), from 8 concurrent clients. Reports registrations/s.
//
//	go test ./api/registryapi -run '^$' -bench BenchmarkAgentRegistrationsOverAPI -benchtime 500x
func BenchmarkAgentRegistrationsOverAPI(b *testing.B) {
	n := startNode(b, func(o *registryapi.Options) { o.RateLimits.Disabled = true })
	_, _, devTok := n.developer(b)
	b.SetParallelism(4) // × GOMAXPROCS clients
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			bt := n.bootstrap(b, devTok, nil)
			r := n.do(b, req{Method: "POST", Path: "/api/v1/agents", Token: bt, Body: map[string]any{}})
			if r.Status != http.StatusCreated {
				b.Fatalf("status %d: %s", r.Status, r.Body)
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "registrations/s")
}

// BenchmarkDeveloperSignUpsOverAPI measures POST /developers over HTTP.
func BenchmarkDeveloperSignUpsOverAPI(b *testing.B) {
	n := startNode(b, func(o *registryapi.Options) { o.RateLimits.Disabled = true })
	b.SetParallelism(4)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			u := uuid.NewString()
			r := n.do(b, req{Method: "POST", Path: "/api/v1/developers", Body: map[string]string{"name": "Bench", "email": u + "@example.org"}})
			if r.Status != http.StatusCreated {
				b.Fatalf("status %d: %s", r.Status, r.Body)
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "signups/s")
}
