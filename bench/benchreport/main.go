// Command benchreport turns `go test -bench` output into the benchmark
// report of `make bench`: bench/results/<date>-<machine>.md and .json,
// each figure with its target, the ratio to it, the ratio to the baseline
// measured in the same invocation, and the machine (cores, load average).
//
//	go test -run '^$' -bench . ./... | tee raw.txt
//	go run ./bench/benchreport -in raw.txt -out bench/results -load-before "$(cut -d' ' -f1-3 /proc/loadavg)"
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

func main() {
	in := flag.String("in", "", "go test -bench output (default stdin)")
	out := flag.String("out", "bench/results", "directory of the reports")
	loadBefore := flag.String("load-before", "", "load averages when the benchmarks started")
	command := flag.String("command", "", "the go test flags and packages that produced the input (recorded in the report)")
	flag.Parse()
	if err := run(*in, *out, *loadBefore, *command); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func run(in, out, loadBefore, command string) error {
	r := os.Stdin
	if in != "" {
		f, err := os.Open(in)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	results, err := Parse(r)
	if err != nil {
		return err
	}
	if len(results) == 0 {
		return fmt.Errorf("no benchmark result in the input")
	}
	m := ThisMachine(loadBefore)
	rep := Build(results, Targets, m, time.Now())
	rep.Command = command
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	base := filepath.Join(out, rep.Date.Format("2006-01-02")+"-"+unsafeName.ReplaceAllString(m.Host, "_"))
	raw, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(base+".json", append(raw, '\n'), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(base+".md", []byte(rep.Markdown()), 0o644); err != nil {
		return err
	}
	fmt.Printf("benchmark report: %s.md (%d figures, %d against targets)\n", base, len(results), len(rep.Targets))
	return nil
}
