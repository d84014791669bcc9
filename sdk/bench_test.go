package sdk_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/sdk"
	"github.com/theprotocol-dev/theprotocol/sdk/demo"
)

// BenchmarkPaidCalls measures, on one node in the same run, paid calls
// through PaymentVerifier (402, token issue, call, settle: four HTTP
// requests, three of them to the registry) next to plain transfers over
// HTTP between the same two agents, one caller at a time. Compare the
// calls/s metrics of the two sub-benchmarks.
//
//	go test -run '^$' -bench BenchmarkPaidCalls -benchtime 200x ./sdk/
func BenchmarkPaidCalls(b *testing.B) {
	n, _, creds := startNode(b)
	const price = 1_000_000 // 0.01 AVT
	res, err := runDemo(b, n, creds, demo.Config{PriceUnits: price, ClientFunds: 100_000 * 100_000_000})
	require.NoError(b, err)
	ctx := context.Background()
	cli := res.ClientAgent

	b.Run("transfer", func(b *testing.B) {
		start := time.Now()
		for b.Loop() {
			if _, err := cli.Transfer(ctx, res.Service, price, "bench"); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
	})
	b.Run("paid-call", func(b *testing.B) {
		start := time.Now()
		for b.Loop() {
			p, err := cli.PayFor(ctx, sdk.Call{Method: http.MethodGet, URL: res.ServiceURL, MaxUnits: price})
			if err != nil || !p.Charged {
				b.Fatalf("paid call: %v (status %d)", err, p.Status)
			}
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
	})
}
