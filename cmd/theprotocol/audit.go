package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/theprotocol-dev/theprotocol/config"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/ingest"
)

// eventStoreDSN finds the frame's EventStore database: -postgres-url, or the
// running dev stack's endpoints.json.
func eventStoreDSN(cfg config.Config, frameID string) (string, config.Frame, error) {
	topo, err := config.LoadTopology(cfg.TopologyFile)
	if err != nil {
		return "", config.Frame{}, err
	}
	var frame config.Frame
	for _, f := range topo.Frames {
		if f.ID == frameID {
			frame = f
		}
	}
	if frame.ID == "" {
		return "", frame, fmt.Errorf("frame %q is not in the topology", frameID)
	}
	admin := cfg.PostgresURL
	if admin == "" {
		raw, err := os.ReadFile(filepath.Join(cfg.DataDir, "endpoints.json"))
		if err != nil {
			return "", frame, fmt.Errorf("no -postgres-url and no running dev stack (%w)", err)
		}
		var ep Endpoints
		if err := json.Unmarshal(raw, &ep); err != nil {
			return "", frame, err
		}
		admin = ep.Postgres.AdminURL
	}
	dsn, err := db.WithDatabase(admin, frame.EventStoreDBName())
	return dsn, frame, err
}

// runAudit prints the frame's supply audit and exits 1 unless it is clean
// (a zero delta and no reconciliation or netting failure); with -replay it
// recomputes everything from the raw events, compares each registry's
// newest checkpoint with the log, and exits 1 on any mismatch.
func runAudit(ctx context.Context, args []string) error {
	var frameID string
	var replay bool
	cfg, _, err := parseFlags("audit", args, func(fs *flag.FlagSet) {
		fs.StringVar(&frameID, "frame", "alpha", "frame to audit")
		fs.BoolVar(&replay, "replay", false, "recompute balances and audit terms from the raw events and compare with the projections")
	})
	if err != nil {
		return err
	}
	dsn, frame, err := eventStoreDSN(cfg, frameID)
	if err != nil {
		return err
	}
	pool, err := db.Open(ctx, dsn, db.PoolOptions{MaxConns: 2})
	if err != nil {
		return err
	}
	defer pool.Close()
	out := json.NewEncoder(os.Stdout)
	out.SetIndent("", "  ")
	if !replay {
		rep, err := ingest.Audit(ctx, pool, frame.ID)
		if err != nil {
			return err
		}
		if err := out.Encode(rep); err != nil {
			return err
		}
		if !rep.OK {
			for _, f := range rep.Failures {
				fmt.Fprintln(os.Stderr, "audit:", f)
			}
			return exitError(1)
		}
		return nil
	}
	rep, err := ingest.Replay(ctx, pool, frame.ID)
	if err != nil {
		return err
	}
	if err := out.Encode(rep); err != nil {
		return err
	}
	if !rep.OK {
		for _, r := range rep.Registries {
			if r.OK() {
				continue
			}
			fmt.Fprintf(os.Stderr, "audit --replay: registry %s: the log disagrees with its checkpoint at seq %d (covering %d):", r.Registry, r.CheckpointSeq, r.CoversSeq)
			for _, d := range r.Differences {
				fmt.Fprintf(os.Stderr, " %s %+d;", d.Term, d.Delta)
			}
			if r.MissingCount > 0 {
				fmt.Fprintf(os.Stderr, " %d sequence number(s) absent from the log, first %v", r.MissingCount, r.MissingSeqs)
			}
			fmt.Fprintln(os.Stderr)
		}
		fmt.Fprintln(os.Stderr, "audit --replay: projections do NOT match the event log or the registries' checkpoints")
		return exitError(1)
	}
	fmt.Fprintln(os.Stderr, "audit --replay: projections match the event log")
	return nil
}

// runEventStore hosts EventStore maintenance: `rebuild` recomputes the
// projections from the event log.
func runEventStore(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "rebuild" {
		return fmt.Errorf("usage: theprotocol eventstore rebuild [-frame alpha] [flags]")
	}
	var frameID string
	cfg, _, err := parseFlags("eventstore rebuild", args[1:], func(fs *flag.FlagSet) {
		fs.StringVar(&frameID, "frame", "alpha", "frame whose projections to rebuild")
	})
	if err != nil {
		return err
	}
	dsn, frame, err := eventStoreDSN(cfg, frameID)
	if err != nil {
		return err
	}
	pool, err := db.Open(ctx, dsn, db.PoolOptions{MaxConns: 2})
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := ingest.Rebuild(ctx, pool, frame.ID); err != nil {
		return err
	}
	rep, err := ingest.Replay(ctx, pool, frame.ID)
	if err != nil {
		return err
	}
	fmt.Printf("rebuilt projections of frame %s from %d events; replay ok=%v delta=%d\n", frame.ID, rep.Replayed.EventsApplied, rep.OK, rep.Replayed.Delta)
	return nil
}
