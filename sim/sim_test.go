package sim

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestHistogramQuantilesWithinABucket(t *testing.T) {
	var h Histogram
	require.Zero(t, h.Quantile(0.5))
	for i := 1; i <= 1000; i++ {
		h.Add(time.Duration(i) * time.Millisecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.99, 990 * time.Millisecond}, {1, time.Second}, {0.001, time.Millisecond}} {
		got := h.Quantile(tc.q)
		require.GreaterOrEqual(t, got, tc.want, "q%v", tc.q)
		require.LessOrEqual(t, float64(got), float64(tc.want)*histGrowth, "q%v: %s", tc.q, got)
	}
	h.Add(time.Hour) // beyond the last bucket: counted there
	require.EqualValues(t, 1001, h.Count())
}

func TestParseMix(t *testing.T) {
	m, err := ParseMix(DefaultMix)
	require.NoError(t, err)
	require.Len(t, m, 5)
	for _, bad := range []string{"", "transfer", "transfer=0", "transfer=-1", "transfer=x", "nope=1", "transfer=1,transfer=2"} {
		_, err := ParseMix(bad)
		require.Error(t, err, bad)
	}
	// The weights are honoured.
	m, err = ParseMix("transfer=3,stake=1")
	require.NoError(t, err)
	r := rand.New(rand.NewPCG(1, 2))
	n := map[string]int{}
	for range 4000 {
		n[m.pick(r).Name]++
	}
	require.InDelta(t, 3000, n["transfer"], 150)
	require.InDelta(t, 1000, n["stake"], 150)
}

func TestTargetOnlyLoopback(t *testing.T) {
	ok := Target{PostgresAdminURL: "postgres://u@127.0.0.1:5432/postgres", Registries: []Registry{{Frame: "f", ID: "a", APIURL: "http://127.0.0.1:8101"}}}
	require.NoError(t, ok.Validate())
	for name, mutate := range map[string]func(*Target){
		"remote API":      func(t *Target) { t.Registries[0].APIURL = "http://10.0.0.5:8101" },
		"name not IP":     func(t *Target) { t.Registries[0].APIURL = "http://api.example.org" },
		"remote postgres": func(t *Target) { t.PostgresAdminURL = "postgres://u@db.example.org/postgres" },
		"no node":         func(t *Target) { t.Registries = nil },
		"duplicate":       func(t *Target) { t.Registries = append(t.Registries, t.Registries[0]) },
	} {
		bad := ok
		bad.Registries = append([]Registry(nil), ok.Registries...)
		mutate(&bad)
		err := bad.Validate()
		require.Error(t, err, name)
	}
	err := Target{PostgresAdminURL: "postgres://u@127.0.0.1/p", Registries: []Registry{{Frame: "f", ID: "a", APIURL: "http://192.168.1.2:1"}}}.Validate()
	require.True(t, strings.Contains(err.Error(), "only drives a local dev stack"), err.Error())
}

func TestConfigBounds(t *testing.T) {
	m, err := ParseMix("transfer=1")
	require.NoError(t, err)
	tg := Target{PostgresAdminURL: "postgres://u@127.0.0.1/p", Registries: []Registry{{Frame: "f", ID: "a", APIURL: "http://127.0.0.1:1"}}}
	good := Config{Target: tg, Duration: time.Second, Agents: 2, Workers: 1, Mix: m}
	require.NoError(t, good.Validate())
	for name, mutate := range map[string]func(*Config){
		"no duration":   func(c *Config) { c.Duration = 0 },
		"too long":      func(c *Config) { c.Duration = MaxDuration + time.Second },
		"one agent":     func(c *Config) { c.Agents = 1 },
		"too many":      func(c *Config) { c.Agents = MaxAgents + 1 },
		"no worker":     func(c *Config) { c.Workers = 0 },
		"negative rate": func(c *Config) { c.Rate = -1 },
		"empty mix":     func(c *Config) { c.Mix = nil },
	} {
		c := good
		mutate(&c)
		require.Error(t, c.Validate(), name)
	}
}

func TestStatsRatesAreOverTheLoadWindow(t *testing.T) {
	s := NewStats()
	s.start = time.Now().Add(-10 * time.Second)
	s.loadEnd = s.start.Add(2 * time.Second)
	for range 100 {
		s.Observe("transfer", time.Millisecond)
		s.OpDone(true)
	}
	s.Error("transfer", "unavailable")
	s.OpDone(false)
	s.LoadOver() // the first end wins
	sum := s.Snapshot()
	require.Equal(t, 2*time.Second, sum.Load)
	require.GreaterOrEqual(t, sum.Elapsed, 10*time.Second)
	require.InDelta(t, 50.5, sum.PerSec, 0.01)
	require.EqualValues(t, 1, sum.Failed)
	require.Len(t, sum.Kinds, 1)
	require.InDelta(t, 50, sum.Kinds[0].PerSec, 0.01)
	require.Equal(t, map[string]int64{"unavailable": 1}, sum.Kinds[0].Errors)
	require.Contains(t, sum.Line(), "errors unavailable=1")
	require.Contains(t, sum.Table(), "101 operations over 2.0s of load")
}
