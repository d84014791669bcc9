package main

import (
	"bufio"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Result is one benchmark's figures, the median over its runs (-count).
type Result struct {
	Package string             `json:"package"`
	Name    string             `json:"name"` // without the -GOMAXPROCS suffix
	Runs    int                `json:"runs"`
	Metrics map[string]float64 `json:"metrics"` // unit → value
}

var procSuffix = regexp.MustCompile(`-\d+$`)

// Parse reads `go test -bench` output: "pkg:" lines name the package of
// the benchmarks below them; a benchmark line is its name, iterations,
// then value/unit pairs. Repeated runs of one benchmark are folded into
// their median per unit. Other lines (logs, PASS, ok) are skipped.
func Parse(r io.Reader) ([]Result, error) {
	type key struct{ pkg, name string }
	runs := map[key]map[string][]float64{}
	count := map[key]int{}
	var order []key
	pkg := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
			continue
		}
		if _, err := strconv.ParseInt(f[1], 10, 64); err != nil {
			continue
		}
		vals := map[string]float64{}
		ok := true
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				ok = false
				break
			}
			vals[f[i+1]] = v
		}
		if !ok {
			continue
		}
		k := key{pkg, procSuffix.ReplaceAllString(f[0], "")}
		if runs[k] == nil {
			runs[k] = map[string][]float64{}
			order = append(order, k)
		}
		count[k]++
		for u, v := range vals {
			runs[k][u] = append(runs[k][u], v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	out := make([]Result, 0, len(order))
	for _, k := range order {
		res := Result{Package: k.pkg, Name: k.name, Runs: count[k], Metrics: map[string]float64{}}
		for u, vs := range runs[k] {
			res.Metrics[u] = median(vs)
		}
		out = append(out, res)
	}
	return out, nil
}

func median(vs []float64) float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
