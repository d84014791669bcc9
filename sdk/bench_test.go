package sdk_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/config"
	"github.com/theprotocol-dev/theprotocol/node"
	"github.com/theprotocol-dev/theprotocol/sdk"
	"github.com/theprotocol-dev/theprotocol/sdk/demo"
	"github.com/theprotocol-dev/theprotocol/testenv"
)

// BenchmarkPaidCalls measures, in one run on a frame of two registries,
// paid calls through PaymentVerifier (402 once, then per call: token issue,
// call, settle; the SDK caches the offer) next to plain transfers over
// HTTP between the same two agents, one caller at a time:
//
//	transfer         POST /transfers, payer → payee on the same registry
//	paid-call        a paid call, payee on the payer's registry
//	paid-call-cross  a paid call, payee on the other registry: the payee's
//	                 registry forwards the settlement to the payer's, and
//	                 the cross-registry saga carries the money (the call
//	                 returns once the settlement is accepted)
//	interleaved      a transfer and a same-registry paid call per
//	                 iteration, so that both figures (and paid/transfer,
//	                 the ratio the target is about) see the same load on a
//	                 shared machine
//
//	go test -run '^$' -bench BenchmarkPaidCalls -benchtime 200x ./sdk/
func BenchmarkPaidCalls(b *testing.B) {
	src, dst, creds := startPair(b)
	const price = 1_000_000 // 0.01 AVT
	same, err := runDemo(b, src, creds, demo.Config{PriceUnits: price, ClientFunds: 100_000 * 100_000_000})
	require.NoError(b, err)
	cross, err := runDemo(b, src, creds, demo.Config{PriceUnits: price, ClientFunds: 100_000 * 100_000_000, ServiceAPI: dst.URL()})
	require.NoError(b, err)
	ctx := context.Background()
	cli := same.ClientAgent

	transfer := func(b *testing.B) {
		if _, err := cli.Transfer(ctx, same.Service, price, "bench"); err != nil {
			b.Fatal(err)
		}
	}
	paid := func(res demo.Result) func(b *testing.B) {
		return func(b *testing.B) {
			p, err := res.ClientAgent.PayFor(ctx, sdk.Call{Method: http.MethodGet, URL: res.ServiceURL, MaxUnits: price})
			if err != nil || !p.Charged {
				b.Fatalf("paid call: %v (status %d)", err, p.Status)
			}
		}
	}
	ops := []struct {
		name string
		do   func(*testing.B)
	}{{"transfer", transfer}, {"paid-call", paid(same)}, {"paid-call-cross", paid(cross)}}
	for _, op := range ops {
		b.Run(op.name, func(b *testing.B) {
			start := time.Now()
			for b.Loop() {
				op.do(b)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
		})
	}
	b.Run("interleaved", func(b *testing.B) {
		var spentT, spentP time.Duration
		for b.Loop() {
			t0 := time.Now()
			transfer(b)
			t1 := time.Now()
			paid(same)(b)
			spentT, spentP = spentT+t1.Sub(t0), spentP+time.Since(t1)
		}
		t, p := float64(b.N)/spentT.Seconds(), float64(b.N)/spentP.Seconds()
		b.ReportMetric(t, "transfers/s")
		b.ReportMetric(p, "paid/s")
		b.ReportMetric(p/t, "paid/transfer")
	})
}

// startPair starts a frame of two registries: src (mainframe, every role)
// and dst (registry, TEG, worker), peered over mTLS, and returns them with
// src's dev admin client.
func startPair(b *testing.B) (*node.Node, *node.Node, adminCreds) {
	ctx := context.Background()
	id := fmt.Sprintf("%d", time.Now().UnixNano()%1_000_000_000)
	srcReg := config.Registry{ID: "ps" + id, Mainframe: true, Roles: []string{"registry", "teg", "eventstore", "worker"}, Namespace: testenv.TestNamespace}
	dstReg := config.Registry{ID: "pd" + id, Roles: []string{"registry", "teg", "worker"}, Namespace: testenv.TestNamespace}
	frame := config.Frame{ID: "fp" + id, TrustDomain: "fp" + id + ".theprotocol.test", Currency: "AVT", Genesis: true,
		Registries: []config.Registry{srcReg, dstReg}, GenesisSupplyUnits: 1_000_000 * 100_000_000}
	dir := b.TempDir() // one data dir: one dev CA for the frame
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	src, err := node.Start(ctx, node.Options{
		Frame: frame, Registry: srcReg, PostgresAdminURL: testenv.PostgresURL(b), TemporalAddr: testenv.TemporalAddr(b),
		KafkaBrokers: testenv.KafkaBrokers(b), DataDir: dir, WriteAdminCredentials: true, Log: quiet,
	})
	require.NoError(b, err)
	b.Cleanup(func() { src.Stop(context.Background()) })
	dst, err := node.Start(ctx, node.Options{
		Frame: frame, Registry: dstReg, PostgresAdminURL: testenv.PostgresURL(b), TemporalAddr: testenv.TemporalAddr(b),
		KafkaBrokers: testenv.KafkaBrokers(b), DataDir: dir, EventStoreURL: src.URL(), Log: quiet,
	})
	require.NoError(b, err)
	b.Cleanup(func() { dst.Stop(context.Background()) })
	b.Cleanup(func() {
		for _, reg := range []string{srcReg.ID, dstReg.ID} {
			for _, s := range []string{"idempotency-sweep-", "hold-expiry-", "staking-rewards-", "balance-checkpoint-", "xfer-prepare-sweep-"} {
				_ = dst.Temporal.ScheduleClient().GetHandle(ctx, s+reg).Delete(ctx)
			}
		}
	})
	require.NoError(b, src.ConnectPeer(ctx, dstReg.ID, dst.MTLSURL()))
	require.NoError(b, dst.ConnectPeer(ctx, srcReg.ID, src.MTLSURL()))
	var creds adminCreds
	raw, err := os.ReadFile(node.AdminCredentialsFile(dir, srcReg.ID))
	require.NoError(b, err)
	require.NoError(b, json.Unmarshal(raw, &creds))
	return src, dst, creds
}
