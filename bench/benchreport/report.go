package main

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Machine describes where the figures were taken.
type Machine struct {
	Host       string `json:"host"`
	CPU        string `json:"cpu"`
	Cores      int    `json:"cores"`
	GOOS       string `json:"goos"`
	GOARCH     string `json:"goarch"`
	LoadBefore string `json:"load_before"` // 1, 5, 15-minute load averages
	LoadAfter  string `json:"load_after"`
}

// Row is one figure measured against its target.
type Row struct {
	Label         string   `json:"label"`
	Package       string   `json:"package"`
	Benchmark     string   `json:"benchmark"`
	Metric        string   `json:"metric"`
	Value         float64  `json:"value"`
	Target        float64  `json:"target"`
	HigherBetter  bool     `json:"higher_is_better"`
	RatioToTarget float64  `json:"ratio_to_target"` // value ÷ target
	Met           bool     `json:"met"`
	Baseline      string   `json:"baseline,omitempty"`
	BaselineValue *float64 `json:"baseline_value,omitempty"`
	// RatioToBaseline is value ÷ the baseline's value of the same metric
	// in the same invocation.
	RatioToBaseline *float64 `json:"ratio_to_baseline,omitempty"`
}

// Report is one invocation's figures.
type Report struct {
	Date    time.Time `json:"date"`
	Command string    `json:"command,omitempty"` // go test flags and packages
	Machine Machine   `json:"machine"`
	Targets []Row     `json:"targets"`
	Results []Result  `json:"results"` // every figure of every benchmark
}

// Build measures results against targets.
func Build(results []Result, targets []Target, m Machine, now time.Time) Report {
	rep := Report{Date: now.UTC(), Machine: m, Results: results, Targets: []Row{}}
	byName := map[string]Result{}
	for _, r := range results {
		byName[r.Name] = r
	}
	for _, t := range targets {
		for _, r := range results {
			match := t.Bench.FindStringSubmatchIndex(r.Name)
			if match == nil {
				continue
			}
			value, ok := r.Metrics[t.Metric]
			if t.Derived != nil {
				value, ok = t.Derived(r.Metrics)
			}
			if !ok {
				continue
			}
			row := Row{Label: t.Label, Package: r.Package, Benchmark: r.Name, Metric: t.Metric, Value: value,
				Target: t.Goal, HigherBetter: t.Higher, RatioToTarget: value / t.Goal}
			row.Met = value >= t.Goal
			if !t.Higher {
				row.Met = value <= t.Goal
			}
			if t.Baseline != "" {
				row.Baseline = string(t.Bench.ExpandString(nil, t.Baseline, r.Name, match))
				if b, found := byName[row.Baseline]; found {
					bv, ok := b.Metrics[t.Metric]
					if t.Derived != nil {
						bv, ok = t.Derived(b.Metrics)
					}
					if ok && bv != 0 {
						ratio := value / bv
						row.BaselineValue, row.RatioToBaseline = &bv, &ratio
					}
				}
			}
			rep.Targets = append(rep.Targets, row)
		}
	}
	return rep
}

// Markdown renders the report.
func (rep Report) Markdown() string {
	var b strings.Builder
	m := rep.Machine
	fmt.Fprintf(&b, "# Benchmarks %s on %s\n\n", rep.Date.Format("2006-01-02 15:04 UTC"), m.Host)
	fmt.Fprintf(&b, "Machine: %d cores (%s), %s/%s; load average before %s, after %s.\n", m.Cores, m.CPU, m.GOOS, m.GOARCH, m.LoadBefore, m.LoadAfter)
	b.WriteString("Written by `make bench` (`bench/benchreport`); the figures are medians over `-count` runs.\n")
	if rep.Command != "" {
		fmt.Fprintf(&b, "Benchmarks run: `go test %s`.\n", rep.Command)
	}
	b.WriteString("\n")
	b.WriteString("## Targets\n\n")
	if len(rep.Targets) == 0 {
		b.WriteString("No benchmark with a target ran.\n\n")
	} else {
		b.WriteString("| figure | benchmark | value | target | ÷ target | met | baseline (same run) | ÷ baseline |\n")
		b.WriteString("| --- | --- | ---: | ---: | ---: | --- | --- | ---: |\n")
		for _, r := range rep.Targets {
			cmp := "≤"
			if r.HigherBetter {
				cmp = "≥"
			}
			met := "no"
			if r.Met {
				met = "yes"
			}
			base, ratio := "—", "—"
			if r.Baseline != "" {
				base = "`" + r.Baseline + "`"
				if r.BaselineValue != nil {
					base += " " + num(*r.BaselineValue)
					ratio = fmt.Sprintf("%.2f", *r.RatioToBaseline)
				} else {
					base += " (not run)"
				}
			}
			fmt.Fprintf(&b, "| %s | `%s` | %s %s | %s %s | %.2f | %s | %s | %s |\n",
				r.Label, r.Benchmark, num(r.Value), r.Metric, cmp, num(r.Target), r.RatioToTarget, met, base, ratio)
		}
		b.WriteString("\n")
	}
	b.WriteString("## Every figure\n\n| package | benchmark | runs | figures |\n| --- | --- | ---: | --- |\n")
	for _, r := range rep.Results {
		var parts []string
		units := make([]string, 0, len(r.Metrics))
		for u := range r.Metrics {
			units = append(units, u)
		}
		slices.Sort(units)
		for _, u := range units {
			parts = append(parts, num(r.Metrics[u])+" "+u)
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | %d | %s |\n", strings.TrimPrefix(r.Package, "github.com/theprotocol-dev/theprotocol/"), r.Name, r.Runs, strings.Join(parts, ", "))
	}
	return b.String()
}

// num prints a figure with at most 4 significant digits after the point.
func num(v float64) string {
	switch {
	case v == float64(int64(v)):
		return strconv.FormatInt(int64(v), 10)
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'g', 4, 64)
	}
}

// ThisMachine describes the machine running the generator.
func ThisMachine(loadBefore string) Machine {
	host, _ := os.Hostname()
	m := Machine{Host: host, Cores: runtime.NumCPU(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, LoadBefore: loadBefore, LoadAfter: loadAvg()}
	if raw, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(raw), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

func loadAvg() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(raw))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
