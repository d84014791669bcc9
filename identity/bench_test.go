package identity_test

import (
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/identity"
)

// BenchmarkHandshake measures mTLS handshakes over loopback TCP between two
// dev-CA SVIDs (P-256), client and server in one process: full handshakes
// and resumed ones (TLS 1.3 session tickets, re-authorised on resumption).
//
//	go test -run '^$' -bench Handshake -benchtime 3s ./identity/
func BenchmarkHandshake(b *testing.B) {
	ca, err := identity.NewEphemeralCA(alphaTD, identity.CAOptions{})
	require.NoError(b, err)
	server := devNode(b, ca, "/registry/main", identity.DevSourceOptions{})
	client := devNode(b, ca, "/teg/main", identity.DevSourceOptions{})
	serverCfg := server.tls.ServerConfig(identity.AuthorizeID(client.id))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				tc := tls.Server(c, serverCfg)
				if tc.Handshake() != nil {
					return
				}
				_, _ = tc.Write([]byte{1})
				_, _ = io.Copy(io.Discard, tc)
			}()
		}
	}()

	run := func(b *testing.B, cfg *tls.Config, wantResume bool) {
		cfg.ServerName = "registry" // constant session cache key
		resumed := 0
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			tc := tls.Client(c, cfg)
			if err := tc.Handshake(); err != nil {
				b.Fatal(err)
			}
			var one [1]byte
			if _, err := io.ReadFull(tc, one[:]); err != nil { // also consumes the session ticket
				b.Fatal(err)
			}
			if tc.ConnectionState().DidResume {
				resumed++
			}
			tc.Close()
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "handshakes/s")
		b.ReportMetric(100*float64(resumed)/float64(b.N), "%resumed")
		if wantResume && resumed < b.N/2 {
			b.Fatalf("only %d of %d handshakes resumed", resumed, b.N)
		}
	}
	serverID := spiffeid.RequireFromPath(alphaTD, "/registry/main")
	b.Run("full", func(b *testing.B) {
		noResume := identity.NewTLS(client.src, client.bundles, identity.TLSOptions{DisableResumption: true})
		run(b, noResume.ClientConfig(identity.AuthorizeID(serverID)), false)
	})
	b.Run("resumed", func(b *testing.B) {
		run(b, client.tls.ClientConfig(identity.AuthorizeID(serverID)), true)
	})
}

// BenchmarkRevokedAgentRefused measures how long a revoked agent's next
// call takes to be refused (revocation, then a new connection whose
// handshake the server's authorizer refuses). The correctness test only
// checks that the very next handshake is refused; the figure lives here.
//
//	go test -run '^$' -bench RevokedAgentRefused -benchtime 2s ./identity/
func BenchmarkRevokedAgentRefused(b *testing.B) {
	ca, err := identity.NewEphemeralCA(alphaTD, identity.CAOptions{})
	require.NoError(b, err)
	agentA := enrolAgent(b, ca, "did:theprotocol:"+uuid.NewString())
	agentB := enrolAgent(b, ca, "did:theprotocol:"+uuid.NewString())
	revoked := identity.NewRevocations()
	bNode := newNode(b, identityFixed{agentB, ca}, agentB.ID, identity.TLSOptions{})
	aNode := newNode(b, identityFixed{agentA, ca}, agentA.ID, identity.TLSOptions{})
	srv := serve(b, bNode, identity.AuthorizeNotRevoked(revoked, identity.AuthorizeID(agentA.ID)))
	far := time.Now().Add(time.Hour)
	for b.Loop() {
		revoked.Revoke(agentA.ID, time.Now())
		if _, err := call(aNode.client(agentB.ID), srv.URL); err == nil {
			b.Fatal("a revoked agent was served")
		}
		b.StopTimer()
		revoked.Forget(far)
		b.StartTimer()
	}
}
