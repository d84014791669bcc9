package main

import "regexp"

// Target is a performance target of the project and the benchmark figure
// it is measured by. The targets come from the issues that set them
// (ledger, EventStore, cross-registry settlement, staking); the baseline
// is the comparison the same benchmark measures in the same invocation
// (one transaction per transfer, no batching, no pipelining, this
// machine's floor).
type Target struct {
	Label  string
	Bench  *regexp.Regexp // benchmark names it applies to
	Metric string         // unit of the figure; see Derived
	Goal   float64
	Higher bool // higher is better (throughput); else lower (latency, time)
	// Baseline is the name of the baseline benchmark, expanded from
	// Bench's match ($1…); "" for none.
	Baseline string
	// Derived, when set, computes the figure from a result's metrics
	// (a rate normalised by the benchmark's own size).
	Derived func(m map[string]float64) (float64, bool)
}

// perSecond is units of count per second of ns/op.
func perSecond(count string) func(map[string]float64) (float64, bool) {
	return func(m map[string]float64) (float64, bool) {
		n, ok1 := m[count]
		ns, ok2 := m["ns/op"]
		if !ok1 || !ok2 || ns <= 0 {
			return 0, false
		}
		return n / (ns / 1e9), true
	}
}

// Targets are the project's performance targets.
var Targets = []Target{
	{Label: "ledger store, group commit", Bench: regexp.MustCompile(`^BenchmarkTransfers/groupcommit$`),
		Metric: "transfers/s", Goal: 30_000, Higher: true, Baseline: "BenchmarkTransfers/direct"},
	{Label: "ledger over HTTP", Bench: regexp.MustCompile(`^BenchmarkHTTPTransfers/(groupcommit)$`),
		Metric: "transfers/s", Goal: 10_000, Higher: true, Baseline: "BenchmarkHTTPTransfers/direct"},
	{Label: "ledger over HTTP, p99", Bench: regexp.MustCompile(`^BenchmarkHTTPTransfers/(groupcommit)$`),
		Metric: "p99_ms", Goal: 50, Baseline: "BenchmarkHTTPTransfers/direct"},
	{Label: "EventStore ingest from Kafka", Bench: regexp.MustCompile(`^BenchmarkKafkaToEventStore/inflight=(\d+)/auth=(\w+)$`),
		Metric: "records/s", Goal: 100_000, Higher: true, Baseline: "BenchmarkKafkaToEventStore/inflight=1/auth=$2"},
	{Label: "supply audit read", Bench: regexp.MustCompile(`^BenchmarkAuditRead$`),
		Metric: "ns/op", Goal: 5e6},
	{Label: "replay (1,000,000 events < 60 s)", Bench: regexp.MustCompile(`^BenchmarkReplay$`),
		Metric: "events/s", Goal: 1_000_000 / 60.0, Higher: true, Derived: perSecond("events")},
	{Label: "outbox commit → projection lag, p99", Bench: regexp.MustCompile(`^BenchmarkOutboxToProjectionLag$`),
		Metric: "lag_p99_ms", Goal: 1000},
	{Label: "cross-registry under load", Bench: regexp.MustCompile(`^BenchmarkCrossRegistryTransfers/cross/batched$`),
		Metric: "transfers/s", Goal: 1000, Higher: true, Baseline: "BenchmarkCrossRegistryTransfers/cross/unbatched"},
	{Label: "cross-registry under load, p99", Bench: regexp.MustCompile(`^BenchmarkCrossRegistryTransfers/cross/batched$`),
		Metric: "p99_ms", Goal: 2000, Baseline: "BenchmarkCrossRegistryTransfers/cross/unbatched"},
	{Label: "cross-registry, lone transfer p99", Bench: regexp.MustCompile(`^BenchmarkCrossRegistryTransfers/cross/idle$`),
		Metric: "p99_ms", Goal: 300, Baseline: "BenchmarkCrossRegistryTransfers/intra"},
	{Label: "staking reward run (1,000,000 positions < 5 min)", Bench: regexp.MustCompile(`^BenchmarkStakingRewardRun$`),
		Metric: "positions/s", Goal: 1_000_000 / 300.0, Higher: true},
	// The bridge's load target is relative (0.8× the batched cross-registry
	// figure of the same run): the report shows that ratio as the
	// baseline ratio; the absolute goal is the cross-registry one.
	{Label: "bridge under load", Bench: regexp.MustCompile(`^BenchmarkBridgeTransfers/bridge/load$`),
		Metric: "transfers/s", Goal: 0.8 * 1000, Higher: true, Baseline: "BenchmarkBridgeTransfers/xregistry/batched"},
	{Label: "bridge under load, p99", Bench: regexp.MustCompile(`^BenchmarkBridgeTransfers/bridge/load$`),
		Metric: "p99_ms", Goal: 2000, Baseline: "BenchmarkBridgeTransfers/xregistry/batched"},
	{Label: "bridge, lone send p99", Bench: regexp.MustCompile(`^BenchmarkBridgeTransfers/bridge/idle$`),
		Metric: "p99_ms", Goal: 500},
	{Label: "governance tally of 100,000 votes with delegation (< 5 s)", Bench: regexp.MustCompile(`^BenchmarkTally100k(WithDelegation|OnTheLedger)$`),
		Metric: "ns/op", Goal: 5e9},
	{Label: "EigenTrust, 100,000 agents and 1,000,000 edges (< 10 s)", Bench: regexp.MustCompile(`^BenchmarkFull$`),
		Metric: "ns/op", Goal: 10e9},
	// Paid calls: at least half the plain-transfer rate of the same run;
	// the baseline ratio is the figure to read.
	{Label: "paid calls through PaymentVerifier", Bench: regexp.MustCompile(`^BenchmarkPaidCalls/paid-call$`),
		Metric: "calls/s", Goal: 0.5 * 10_000, Higher: true, Baseline: "BenchmarkPaidCalls/transfer"},
}
