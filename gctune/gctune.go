// Package gctune sets the Go garbage collector for a node's workload.
package gctune

import (
	"log/slog"
	"os"
	"runtime/debug"
)

// GCPercent is the collector's target a node runs with unless GOGC is set.
// A node's heap is small and steady (connection pools, caches, the batches
// in flight) next to the garbage its hot paths make: decoding ingest
// batches, encoding transfer batches and their events. At Go's default of
// 100 the collector ran about once per ingest batch and about every few
// hundred transfers. At 400 it runs a quarter as often, for a larger heap
// that MemoryLimit caps. Measured, alternating in one window: EventStore
// ingest 10.26 → 9.22 µs of Go CPU per event; the ledger's group commit
// 52–55 → 37–42 µs of Go CPU per transfer (8,414 / 9,361 → 10,877 /
// 9,705 transfers/s).
const GCPercent = 400

// MemoryLimit is the soft memory limit set with GCPercent unless
// GOMEMLIMIT is set: near it the collector runs as often as needed to stay
// under it, whatever GOGC says.
const MemoryLimit = 2 << 30

// Tune sets the process's garbage collector (see GCPercent) and returns a
// function restoring the previous settings. Environment variables win:
// with GOGC or GOMEMLIMIT set, that setting is left alone. Nodes call it at
// start; the throughput benchmarks call it too, so they measure what a
// node runs.
func Tune(log *slog.Logger) (restore func()) {
	var undo []func()
	if os.Getenv("GOGC") == "" {
		prev := debug.SetGCPercent(GCPercent)
		undo = append(undo, func() { debug.SetGCPercent(prev) })
		if log != nil {
			log.Debug("garbage collector target set (GOGC overrides)", "gc_percent", GCPercent)
		}
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		prev := debug.SetMemoryLimit(MemoryLimit)
		undo = append(undo, func() { debug.SetMemoryLimit(prev) })
		if log != nil {
			log.Debug("soft memory limit set (GOMEMLIMIT overrides)", "bytes", MemoryLimit)
		}
	}
	return func() {
		for _, f := range undo {
			f()
		}
	}
}
