// Command theprotocol is the single binary of TheProtocol: every role
// (registry, TEG, EventStore, worker) and every operator tool is a
// subcommand.
//
//	theprotocol dev       run the whole system locally on embedded services
//	theprotocol serve     run the nodes of a topology against external services
//	theprotocol migrate   apply database migrations
//	theprotocol audit     print or replay a frame's supply audit
//	theprotocol eventstore rebuild   recompute projections from the event log
//	theprotocol admin sagas list|replay   list cross-registry sagas, replay parked ones
//	theprotocol sim       load the dev stack with simulated agents, check the invariants
//	theprotocol reputation verify <run>   recompute a reputation run, compare digests
//	theprotocol testenv   start test services, run a command with their addresses
//	theprotocol version   print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/theprotocol-dev/theprotocol/config"
	"github.com/theprotocol-dev/theprotocol/node"
)

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string) error
}

var commands = []command{
	{"dev", "run the whole system locally: embedded Postgres, Temporal dev server + UI, Kafka, demo topology", runDev},
	{"serve", "run the topology's nodes against external Postgres, Temporal and Kafka", runServe},
	{"migrate", "create and migrate every database of the topology", runMigrate},
	{"audit", "print a frame's supply audit; -replay recomputes it from the raw events (exit 1 on mismatch)", runAudit},
	{"eventstore", "EventStore maintenance: `eventstore rebuild` recomputes projections from the event log", runEventStore},
	{"admin", "operator tools: `admin sagas list|replay` lists cross-registry sagas by state and replays parked ones", runAdmin},
	{"sim", "load the local dev stack with simulated agents, then check every invariant is exactly zero", runSim},
	{"reputation", "`reputation verify <run>` recomputes a reputation run from its published inputs and compares digests", runReputation},
	{"testenv", "start test Postgres/Temporal/Kafka, run the given command with their addresses, stop them", runTestenv},
	{"version", "print the version", func(context.Context, []string) error { fmt.Println(node.Version); return nil }},
}

func usage() {
	fmt.Fprintf(os.Stderr, "usage: theprotocol <command> [flags]\n\ncommands:\n")
	for _, c := range commands {
		fmt.Fprintf(os.Stderr, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(os.Stderr, "\nRun 'theprotocol <command> -help' for a command's flags.\n")
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	name := os.Args[1]
	if name == "-h" || name == "-help" || name == "--help" || name == "help" {
		usage()
		return
	}
	for _, c := range commands {
		if c.name != name {
			continue
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := c.run(ctx, os.Args[2:])
		stop()
		if err != nil {
			if errors.Is(err, flag.ErrHelp) {
				os.Exit(0)
			}
			var exit exitError
			if errors.As(err, &exit) {
				os.Exit(int(exit))
			}
			fmt.Fprintf(os.Stderr, "theprotocol %s: %v\n", name, err)
			os.Exit(1)
		}
		return
	}
	fmt.Fprintf(os.Stderr, "theprotocol: unknown command %q\n\n", name)
	usage()
	os.Exit(2)
}

// exitError carries a child's exit status through (testenv).
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// parseFlags parses the shared configuration flags plus extra ones.
func parseFlags(name string, args []string, extra func(fs *flag.FlagSet)) (config.Config, *flag.FlagSet, error) {
	cfg := config.Defaults()
	fs := flag.NewFlagSet("theprotocol "+name, flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		return cfg, fs, err
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fs, err
	}
	return cfg, fs, nil
}

func newLogger(cfg config.Config) *slog.Logger {
	var level slog.Level
	switch strings.ToLower(cfg.LogLevel) {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
