// Package worker wires Temporal workers: it runs the workflow families of
// workflows.Families whose activities a node supplies, creates their
// schedules at start-up, and sets up the namespace and search attributes
// an operator relies on.
package worker

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"time"

	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/theprotocol-dev/theprotocol/workflows"
)

// Options configure a registry worker.
type Options struct {
	Registry  string
	TaskQueue string
	// IdempotencyRetention is how long Idempotency-Key records are kept.
	IdempotencyRetention time.Duration
	Log                  *slog.Logger
}

// Start runs, on a worker for the registry's task queue, every family of
// workflows.Families whose activity structs are among acts: it registers
// the family's workflows and activities, starts the worker and makes sure
// the family's schedules exist. A family missing an activity struct is
// skipped (a node without a TEG runs no ledger family). A nil pointer in
// acts counts as not supplied, so a node may pass optional structs as they
// are; a struct no family declares, or one supplied twice, is an error (a
// family left out of the list would otherwise silently run nowhere). Stop
// the returned worker on shutdown.
func Start(ctx context.Context, c client.Client, o Options, acts ...any) (sdkworker.Worker, error) {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	run, skipped, err := match(workflows.Families, acts)
	if err != nil {
		return nil, err
	}
	w := sdkworker.New(c, o.TaskQueue, sdkworker.Options{
		// Bounded concurrency: the node's Postgres pools are the real limit.
		MaxConcurrentActivityExecutionSize:      64,
		MaxConcurrentLocalActivityExecutionSize: 64,
		MaxConcurrentWorkflowTaskExecutionSize:  64,
	})
	fams := make([]workflows.Family, 0, len(run))
	for _, r := range run {
		r.family.RegisterWorkflows(w)
		for _, a := range r.activities {
			w.RegisterActivity(a)
		}
		fams = append(fams, r.family)
	}
	for _, s := range skipped {
		log.Info("workflow family not run on this node", "family", s.family, "missing_activities", s.missing)
	}
	if err := w.Start(); err != nil {
		return nil, fmt.Errorf("start worker on %s: %w", o.TaskQueue, err)
	}
	if err := EnsureSchedules(ctx, c, o, fams...); err != nil {
		w.Stop()
		return nil, err
	}
	return w, nil
}

// runnable is a family with the activity values that satisfy it.
type runnable struct {
	family     workflows.Family
	activities []any
}

// skip records why a family does not run.
type skip struct {
	family, missing string
}

// match pairs each family with the supplied activity structs of the types
// it declares; see Start for the rules.
func match(families []workflows.Family, acts []any) ([]runnable, []skip, error) {
	supplied := map[reflect.Type]any{}
	var order []reflect.Type
	for _, a := range acts {
		v := reflect.ValueOf(a)
		if !v.IsValid() || (v.Kind() == reflect.Pointer && v.IsNil()) {
			continue
		}
		t := v.Type()
		if _, dup := supplied[t]; dup {
			return nil, nil, fmt.Errorf("activity struct %s supplied twice", t)
		}
		supplied[t] = a
		order = append(order, t)
	}
	declared := map[reflect.Type]bool{}
	var run []runnable
	var skipped []skip
	for _, f := range families {
		r := runnable{family: f}
		missing := ""
		for _, d := range f.Activities {
			t := reflect.TypeOf(d)
			declared[t] = true
			if a, ok := supplied[t]; ok {
				r.activities = append(r.activities, a)
			} else if missing == "" {
				missing = t.String()
			}
		}
		if missing != "" {
			skipped = append(skipped, skip{family: f.Name, missing: missing})
			continue
		}
		run = append(run, r)
	}
	for _, t := range order {
		if !declared[t] {
			return nil, nil, fmt.Errorf("no workflow family declares activity struct %s (is its family in workflows.Families?)", t)
		}
	}
	return run, skipped, nil
}
