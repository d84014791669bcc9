package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/theprotocol-dev/theprotocol/config"
	"github.com/theprotocol-dev/theprotocol/sim"
)

// runSim drives a load against the local dev stack and checks the
// invariants at the end (sim/README.md). Exit status 1 names what differed.
func runSim(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("theprotocol sim", flag.ContinueOnError)
	dataDir := fs.String("data-dir", ".data", "the dev stack's data directory (its endpoints.json is the target)")
	endpoints := fs.String("endpoints", "", "the endpoints file to target (default <data-dir>/endpoints.json); 127.0.0.1 targets only")
	duration := fs.Duration("duration", 60*time.Second, fmt.Sprintf("how long operations are started (at most %s)", sim.MaxDuration))
	maxOps := fs.Int64("ops", 0, "stop after this many operations (0: bounded by -duration only)")
	agents := fs.Int("agents", 24, "agents created across the frames' mainframes")
	rate := fs.Float64("rate", 0, "operations per second (0: as fast as the workers go)")
	workers := fs.Int("workers", 16, "concurrent operations")
	mix := fs.String("mix", sim.DefaultMix, "weighted operations, name=weight,… (known: "+fmt.Sprint(sim.OpNames())+")")
	seed := fs.Uint64("seed", 0, "random seed (0: from the clock)")
	settle := fs.Duration("settle-timeout", 3*time.Minute, "how long to wait for quiescence at the end")
	report := fs.String("report", "", "also write the report as JSON to this file")
	chaos := fs.String("chaos", "", "faults injected during the run through the dev stack's control endpoint, comma-separated: "+sim.ChaosHelp)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *endpoints == "" {
		*endpoints = filepath.Join(*dataDir, "endpoints.json")
	}
	target, err := sim.LoadEndpoints(*endpoints)
	if err != nil {
		return err
	}
	m, err := sim.ParseMix(*mix)
	if err != nil {
		return err
	}
	log := newLogger(config.Defaults())
	cfg := sim.Config{
		Target: target, Duration: *duration, MaxOps: *maxOps, Agents: *agents, Rate: *rate, Workers: *workers,
		Mix: m, Seed: *seed, SettleTimeout: *settle, Progress: os.Stdout, ProgressLines: !isTerminal(os.Stdout), Log: log,
	}
	if *chaos != "" {
		faults, err := sim.ParseChaos(*chaos, target)
		if err != nil {
			return err
		}
		cfg.Chaos = sim.Chaos(target.ControlURL, faults, *duration)
		fmt.Printf("chaos: %v\n", faults)
	}
	s, err := sim.New(cfg)
	if err != nil {
		return err
	}
	fmt.Printf("simulating against %s for %s: %d agents, %d workers, mix %s\n", *endpoints, *duration, *agents, *workers, *mix)
	rep, err := s.Run(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("setup %s, settle and checks %s\n", rep.Setup.Round(time.Millisecond), rep.Settle.Round(time.Millisecond))
	fmt.Print(rep.Summary.Table())
	if len(rep.Xfers) > 0 {
		fmt.Printf("cross-registry transfers: %v\n", rep.Xfers)
	}
	if *report != "" {
		raw, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(*report, append(raw, '\n'), 0o644); err != nil {
			return err
		}
	}
	if !rep.OK() {
		fmt.Printf("INVARIANTS BROKEN: %d difference(s)\n", len(rep.Differences))
		for _, d := range rep.Differences {
			fmt.Println("  " + d)
		}
		return exitError(1)
	}
	fmt.Println("every invariant holds: audit delta 0, reconciliation 0, every acknowledged operation reflected exactly once")
	return nil
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
