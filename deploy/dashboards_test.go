package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/config"
	"github.com/theprotocol-dev/theprotocol/node"
	"github.com/theprotocol-dev/theprotocol/testenv"
	"github.com/theprotocol-dev/theprotocol/workflows"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// dashboard is the part of Grafana's dashboard JSON the tests read.
type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	Type    string  `json:"type"`
	Title   string  `json:"title"`
	Panels  []panel `json:"panels"` // a collapsed row's panels
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

// flat lists the panels in order, a collapsed row's own after it.
func (d dashboard) flat() []panel {
	var out []panel
	for _, p := range d.Panels {
		out = append(out, p)
		out = append(out, p.Panels...)
	}
	return out
}

// queries returns every PromQL query of the dashboard by where it is.
func (d dashboard) queries() map[string]string {
	out := map[string]string{}
	for i, p := range d.flat() {
		for j, t := range p.Targets {
			out[fmt.Sprintf("panel %d %q target %d", i, p.Title, j)] = t.Expr
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if json.Unmarshal(v.Query, &q) != nil {
			_ = json.Unmarshal(v.Query, &q.Query) // the query as a plain string
		}
		out["variable "+v.Name] = q.Query
	}
	return out
}

func loadDashboards(t *testing.T) map[string]dashboard {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("grafana", "dashboards", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	out := map[string]dashboard{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		var d dashboard
		require.NoError(t, json.Unmarshal(raw, &d), f)
		out[f] = d
	}
	return out
}

var (
	promString   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	promBraces   = regexp.MustCompile(`\{[^{}]*\}`)
	promRange    = regexp.MustCompile(`\[[^\]]*\]`)
	promGrouping = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	promIdent    = regexp.MustCompile(`[$0-9.]?[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?`)
	promKeywords = map[string]bool{
		"and": true, "or": true, "unless": true, "bool": true, "offset": true, "inf": true, "nan": true,
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	}
)

// metricNames returns the metric names a PromQL query selects: what is left
// once strings, label matchers, ranges, grouping clauses, functions,
// keywords, numbers with units and Grafana variables are taken out.
func metricNames(expr string) []string {
	s := promString.ReplaceAllString(expr, `""`)
	s = promBraces.ReplaceAllString(s, " ")
	s = promRange.ReplaceAllString(s, " ")
	s = promGrouping.ReplaceAllString(s, " ")
	var out []string
	for _, m := range promIdent.FindAllString(s, -1) {
		switch {
		case m[0] == '$' || m[0] == '.' || (m[0] >= '0' && m[0] <= '9'):
			continue // a variable, or a number's exponent or unit
		case strings.HasSuffix(m, "("):
			continue // a function
		case promKeywords[m]:
			continue
		}
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out
}

func TestMetricNames(t *testing.T) {
	for expr, want := range map[string][]string{
		`go_goroutines`: {"go_goroutines"},
		`histogram_quantile(0.99, sum by (le, route) (rate(http_request_duration_seconds_bucket{frame="$frame"}[$__rate_interval])))`: {"http_request_duration_seconds_bucket"},
		`supply_audit_units{frame="$frame",term=~"a|b"} - ignoring(term) supply_audit_delta`:                                          {"supply_audit_units", "supply_audit_delta"},
		`theprotocol_identity_svid_expiry_timestamp_seconds{frame="x"} - time() < 1.5e3`:                                              {"theprotocol_identity_svid_expiry_timestamp_seconds"},
		`sum(rate(a_total[5m] offset 1h)) / on (instance) group_left(frame) up > bool 0 and b`:                                        {"a_total", "up", "b"},
		`label_values(up{job="theprotocol"}, frame)`:                                                                                  {"up", "frame"},
	} {
		require.Equal(t, want, metricNames(expr), expr)
	}
}

// TestDashboardsAreWellFormed: every dashboard parses, has a unique uid, a
// query in every target; a dashboard templated by frame opens with the
// invariant row (the audit's terms, its delta and verdict, reconciliation)
// and filters every panel query by that frame.
func TestDashboardsAreWellFormed(t *testing.T) {
	uids := map[string]string{}
	frameDashboards := 0
	for f, d := range loadDashboards(t) {
		require.NotEmpty(t, d.UID, f)
		require.NotContains(t, uids, d.UID, "%s reuses the uid of %s", f, uids[d.UID])
		uids[d.UID] = f
		for where, q := range d.queries() {
			require.NotEmpty(t, strings.TrimSpace(q), "%s: %s has no query", f, where)
		}
		if !slices.ContainsFunc(d.Templating.List, func(v struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		}) bool {
			return v.Name == "frame"
		}) {
			continue
		}
		frameDashboards++
		ps := d.flat()
		require.Equal(t, "row", ps[0].Type, "%s: the first panel is the invariant row", f)
		require.Equal(t, "Invariants", ps[0].Title, f)
		var invariant []string
		for _, p := range ps[1:] {
			if p.Type == "row" {
				break
			}
			for _, tg := range p.Targets {
				invariant = append(invariant, metricNames(tg.Expr)...)
			}
		}
		for _, m := range []string{"supply_audit_units", "supply_invariant_violation", "reconciliation_delta_units", "transit_netting_delta_units"} {
			require.Contains(t, invariant, m, "%s: the invariant row shows %s", f, m)
		}
		for i, p := range ps {
			for _, tg := range p.Targets {
				require.Contains(t, tg.Expr, `frame="$frame"`, "%s: panel %d %q is not filtered by frame", f, i, p.Title)
			}
		}
	}
	require.NotZero(t, frameDashboards, "a dashboard templated by frame")
}

// prometheusOwn are series Prometheus itself writes for every target.
var prometheusOwn = map[string]bool{"up": true, "scrape_duration_seconds": true, "scrape_samples_scraped": true}

// TestDashboardMetricsAreExported starts a mainframe node with every role
// (and Kafka, so the relays and the EventStore consumer register theirs)
// and checks every metric a dashboard queries is among the descriptors
// of the node's Prometheus registry: a renamed or removed metric fails
// here, not as an empty panel in production.
func TestDashboardMetricsAreExported(t *testing.T) {
	testenv.SkipWithoutServices(t)
	ctx := context.Background()
	id := fmt.Sprintf("dash%d", time.Now().UnixNano()%1_000_000_000)
	reg := config.Registry{ID: id, Mainframe: true, Roles: []string{"registry", "teg", "eventstore", "worker"}, Namespace: testenv.TestNamespace}
	frame := config.Frame{ID: "f" + id, TrustDomain: "f.theprotocol.test", Currency: "AVT", Genesis: true, Registries: []config.Registry{reg}}
	n, err := node.Start(ctx, node.Options{
		Frame: frame, Registry: reg, PostgresAdminURL: testenv.PostgresURL(t),
		TemporalAddr: testenv.TemporalAddr(t), KafkaBrokers: testenv.KafkaBrokers(t),
		DataDir: t.TempDir(), Log: slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		n.Stop(context.Background())
		// The test namespace outlives the node: drop its schedules.
		for _, fam := range workflows.Families {
			for _, s := range fam.Schedules {
				_ = n.Temporal.ScheduleClient().GetHandle(context.Background(), s.IDPrefix+id).Delete(context.Background())
			}
		}
	})

	exported := registered(n.Metrics)
	require.Contains(t, exported, "supply_audit_units", "the EventStore's collectors are registered")
	for f, d := range loadDashboards(t) {
		for where, q := range d.queries() {
			for _, m := range metricNames(q) {
				if m == "frame" && strings.HasPrefix(q, "label_values(") {
					continue // the label label_values lists
				}
				if prometheusOwn[m] || exported[m] {
					continue
				}
				base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_sum"), "_count")
				require.True(t, base != m && exported[base], "%s: %s queries %s, which the node does not export", f, where, m)
			}
		}
	}
}

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

// registered lists the names of every metric described by reg's
// collectors (a vector with no series yet is described all the same).
func registered(reg *prometheus.Registry) map[string]bool {
	ch := make(chan *prometheus.Desc)
	go func() {
		reg.Describe(ch)
		close(ch)
	}()
	out := map[string]bool{}
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			out[m[1]] = true
		}
	}
	return out
}
