package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const sample = `goos: linux
goarch: amd64
pkg: github.com/theprotocol-dev/theprotocol/db/ledgerstore
cpu: Some CPU
BenchmarkTransfers/groupcommit-2         	   40000	         0 ns/op	        9000 transfers/s	       120.0 p50_ms	       180.0 p99_ms
BenchmarkTransfers/groupcommit-2         	   40000	         0 ns/op	       11000 transfers/s	       110.0 p50_ms	       160.0 p99_ms
BenchmarkTransfers/groupcommit-2         	   40000	         0 ns/op	       10000 transfers/s	       100.0 p50_ms	       170.0 p99_ms
BenchmarkTransfers/direct-2              	   40000	         0 ns/op	         500.0 transfers/s	        50.0 p50_ms	        90.0 p99_ms
some log line BenchmarkNot a result
PASS
ok  	github.com/theprotocol-dev/theprotocol/db/ledgerstore	60.1s
pkg: github.com/theprotocol-dev/theprotocol/ingest
BenchmarkAuditRead-2   	   12000	     88000 ns/op	     512 B/op	      9 allocs/op
BenchmarkReplay-2      	       1	33400000000 ns/op	   1000000 events
BenchmarkKafkaToEventStore/inflight=1/auth=on-2 	1	0 ns/op	 80000 records/s
BenchmarkKafkaToEventStore/inflight=3/auth=on-2 	1	0 ns/op	 120000 records/s
pkg: github.com/theprotocol-dev/theprotocol/node
BenchmarkOutboxToProjectionLag-2 	1	20000000000 ns/op	1500 lag_p99_ms
`

func TestParseFoldsRunsIntoMedians(t *testing.T) {
	res, err := Parse(strings.NewReader(sample))
	require.NoError(t, err)
	require.Len(t, res, 7)
	gc := res[0]
	require.Equal(t, "BenchmarkTransfers/groupcommit", gc.Name, "the -GOMAXPROCS suffix is dropped")
	require.Equal(t, "github.com/theprotocol-dev/theprotocol/db/ledgerstore", gc.Package)
	require.Equal(t, 3, gc.Runs)
	require.Equal(t, 10000.0, gc.Metrics["transfers/s"])
	require.Equal(t, 170.0, gc.Metrics["p99_ms"])
	require.Equal(t, 512.0, res[2].Metrics["B/op"])
	require.Equal(t, "github.com/theprotocol-dev/theprotocol/node", res[6].Package)
	require.Equal(t, 4.5, median([]float64{9, 1, 5, 4}))
}

func TestBuildMeasuresTargetsAndBaselines(t *testing.T) {
	res, err := Parse(strings.NewReader(sample))
	require.NoError(t, err)
	rep := Build(res, Targets, Machine{Host: "box", Cores: 2, LoadBefore: "1.00 2.00 3.00", LoadAfter: "2.00 2.00 3.00"}, time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC))
	rows := map[string]Row{}
	for _, r := range rep.Targets {
		rows[r.Benchmark+" "+r.Metric] = r
	}
	gc := rows["BenchmarkTransfers/groupcommit transfers/s"]
	require.InDelta(t, 10000.0/30000, gc.RatioToTarget, 1e-9)
	require.False(t, gc.Met)
	require.Equal(t, "BenchmarkTransfers/direct", gc.Baseline)
	require.InDelta(t, 20.0, *gc.RatioToBaseline, 1e-9)

	audit := rows["BenchmarkAuditRead ns/op"]
	require.True(t, audit.Met, "88 µs is under 5 ms")
	require.Nil(t, audit.RatioToBaseline)

	replay := rows["BenchmarkReplay events/s"]
	require.InDelta(t, 1e6/33.4, replay.Value, 1e-6, "derived from events and ns/op")
	require.True(t, replay.Met)

	k := rows["BenchmarkKafkaToEventStore/inflight=3/auth=on records/s"]
	require.True(t, k.Met)
	require.Equal(t, "BenchmarkKafkaToEventStore/inflight=1/auth=on", k.Baseline, "the baseline keeps the auth mode")
	require.InDelta(t, 1.5, *k.RatioToBaseline, 1e-9)

	lag := rows["BenchmarkOutboxToProjectionLag lag_p99_ms"]
	require.False(t, lag.Met, "1.5 s is over the 1 s bound")

	md := rep.Markdown()
	require.Contains(t, md, "2 cores")
	require.Contains(t, md, "load average before 1.00 2.00 3.00, after 2.00 2.00 3.00")
	require.Contains(t, md, "| ledger store, group commit | `BenchmarkTransfers/groupcommit` | 10000 transfers/s | ≥ 30000 | 0.33 | no | `BenchmarkTransfers/direct` 500 | 20.00 |")
	require.Contains(t, md, "| `ingest` | `BenchmarkAuditRead` | 1 | 512 B/op, 9 allocs/op, 88000 ns/op |")
}

func TestRunRefusesAnEmptyInput(t *testing.T) {
	dir := t.TempDir()
	in := dir + "/raw.txt"
	require.NoError(t, writeFile(in, "PASS\nok x 1s\n"))
	require.ErrorContains(t, run(in, dir, "", ""), "no benchmark result")
	require.NoError(t, writeFile(in, sample))
	require.NoError(t, run(in, dir, "0.1 0.2 0.3", "-bench . ./db/ledgerstore"))
	files, err := filepath.Glob(filepath.Join(dir, "*-*.md"))
	require.NoError(t, err)
	require.Len(t, files, 1)
	md, err := os.ReadFile(files[0])
	require.NoError(t, err)
	require.Contains(t, string(md), "Benchmarks run: `go test -bench . ./db/ledgerstore`.")
	_, err = os.Stat(strings.TrimSuffix(files[0], ".md") + ".json")
	require.NoError(t, err)
}

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o644) }
