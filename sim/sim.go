package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// Config bounds and shapes a run.
type Config struct {
	Target   Target
	Duration time.Duration // how long operations are started (required)
	MaxOps   int64         // stop starting operations after this many (0: no bound)
	Agents   int           // agents created across the funded registries
	Rate     float64       // operations per second over all workers (0: as fast as they go)
	Workers  int           // concurrent operations
	Mix      Mix
	// FundUnits is each agent's grant from its registry's treasury.
	FundUnits int64
	// RetryFor bounds the retries of a request whose outcome is unknown.
	RetryFor time.Duration
	// SettleTimeout bounds the wait for quiescence at the end.
	SettleTimeout time.Duration
	// Progress receives the live line every ProgressEvery (nil: none);
	// ProgressLines writes one line per update instead of rewriting one.
	Progress      io.Writer
	ProgressEvery time.Duration
	ProgressLines bool
	// Chaos, when set, is called as the load starts; it injects faults
	// during the run (ParseChaos) and returns when they are over.
	Chaos func(ctx context.Context, log *slog.Logger) error
	Seed  uint64
	Log   *slog.Logger
}

// Limits of a run: the simulation is a dev tool, never a soak left running.
const (
	MaxDuration = 10 * time.Minute
	MaxAgents   = 2000
	MaxWorkers  = 256
)

// Validate checks the bounds.
func (c *Config) Validate() error {
	switch {
	case c.Duration <= 0 || c.Duration > MaxDuration:
		return fmt.Errorf("duration must be in (0, %s], got %s", MaxDuration, c.Duration)
	case c.Agents < 2 || c.Agents > MaxAgents:
		return fmt.Errorf("agents must be in [2, %d], got %d", MaxAgents, c.Agents)
	case c.Workers < 1 || c.Workers > MaxWorkers:
		return fmt.Errorf("workers must be in [1, %d], got %d", MaxWorkers, c.Workers)
	case c.Rate < 0 || c.MaxOps < 0:
		return fmt.Errorf("rate and max ops must not be negative")
	case len(c.Mix) == 0:
		return fmt.Errorf("the mix names no operation")
	}
	if c.FundUnits <= 0 {
		c.FundUnits = 10_000 * unitsPerToken
	}
	if c.RetryFor <= 0 {
		c.RetryFor = time.Minute
	}
	if c.SettleTimeout <= 0 {
		c.SettleTimeout = 3 * time.Minute
	}
	if c.ProgressEvery <= 0 {
		c.ProgressEvery = time.Second
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Seed == 0 {
		c.Seed = uint64(time.Now().UnixNano())
	}
	return c.Target.Validate()
}

const unitsPerToken = 100_000_000

// Sim is one simulation: its population, what the system acknowledged to
// it, and the figures.
type Sim struct {
	cfg   Config
	cl    *client
	setup *client
	Stats *Stats
	model *Model
	runID string

	admins map[string]string // registry → admin token
	// agents that send, by registry; receivers (accounts that only
	// receive, on registries that cannot fund agents), by registry.
	agents    map[string][]*Account
	receivers map[string][]*Account
	senders   []*Account // every agent
	crossFrom []*Account // agents whose frame has receivers elsewhere
}

// New prepares a simulation (nothing is sent yet).
func New(cfg Config) (*Sim, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConnsPerHost: cfg.Workers + 8, IdleConnTimeout: 30 * time.Second,
	}}
	stats := NewStats()
	return &Sim{
		cfg:       cfg,
		cl:        &client{http: hc, stats: stats, retryFor: cfg.RetryFor},
		setup:     &client{http: hc, stats: NewStats(), retryFor: 5 * time.Minute},
		Stats:     stats,
		model:     newModel(),
		runID:     uuid.NewString()[:8],
		admins:    map[string]string{},
		agents:    map[string][]*Account{},
		receivers: map[string][]*Account{},
	}, nil
}

// Report is a run's outcome.
type Report struct {
	Summary   Summary       `json:"summary"`
	Setup     time.Duration `json:"setup_ns"`
	Settle    time.Duration `json:"settle_ns"`
	Agents    []string      `json:"agents"`
	Receivers []string      `json:"receivers"`
	Positions []int64       `json:"positions"`
	// Cross-registry transfers by final status (committed, aborted).
	Xfers       map[string]int `json:"cross_registry"`
	Differences []string       `json:"differences"` // empty: every invariant holds
}

// OK reports whether every invariant held.
func (r Report) OK() bool { return len(r.Differences) == 0 }

// Run sets the population up, drives the mix for the configured time,
// waits for quiescence and checks the invariants. The error is for a run
// that could not be carried out; broken invariants are in the report.
func (s *Sim) Run(ctx context.Context) (Report, error) {
	var rep Report
	t0 := time.Now()
	if err := s.populate(ctx); err != nil {
		return rep, fmt.Errorf("set up the population: %w", err)
	}
	rep.Setup = time.Since(t0)
	s.cfg.Log.Info("population ready", "agents", len(s.senders), "setup", rep.Setup.Round(time.Millisecond))
	s.Stats = NewStats()
	s.cl.stats = s.Stats

	s.drive(ctx)
	rep.Summary = s.Stats.Snapshot()
	if ctx.Err() != nil {
		return rep, ctx.Err()
	}
	t1 := time.Now()
	rep.Differences = s.Check(ctx)
	rep.Settle = time.Since(t1)
	for _, a := range s.senders {
		rep.Agents = append(rep.Agents, a.ID)
	}
	for _, list := range s.receivers {
		for _, a := range list {
			rep.Receivers = append(rep.Receivers, a.ID)
		}
	}
	rep.Positions = s.model.positionIDs()
	rep.Xfers = s.model.xferOutcomes()
	return rep, nil
}

// drive runs the workers until the duration or the operation count is
// reached; operations in flight finish (their retries are bounded).
func (s *Sim) drive(ctx context.Context) {
	runCtx, cancel := context.WithTimeout(ctx, s.cfg.Duration)
	defer cancel()
	var wg sync.WaitGroup
	var started atomic.Int64
	start := time.Now()
	var interval time.Duration
	if s.cfg.Rate > 0 {
		interval = time.Duration(float64(time.Second) / s.cfg.Rate)
	}
	for w := range s.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(s.cfg.Seed, uint64(w)))
			for runCtx.Err() == nil {
				n := started.Add(1)
				if s.cfg.MaxOps > 0 && n > s.cfg.MaxOps {
					return
				}
				if interval > 0 {
					sleep(runCtx, time.Until(start.Add(time.Duration(n-1)*interval)))
					if runCtx.Err() != nil {
						return
					}
				}
				s.one(ctx, r)
			}
		}()
	}
	go func() {
		<-runCtx.Done()
		s.Stats.LoadOver()
	}()
	chaosDone := make(chan struct{})
	if s.cfg.Chaos != nil {
		go func() {
			defer close(chaosDone)
			if err := s.cfg.Chaos(ctx, s.cfg.Log); err != nil {
				s.cfg.Log.Error("chaos", "err", err)
				s.model.differ("chaos: %v", err)
			}
		}()
	} else {
		close(chaosDone)
	}
	stop := make(chan struct{})
	var pw sync.WaitGroup
	if s.cfg.Progress != nil {
		pw.Add(1)
		go func() {
			defer pw.Done()
			t := time.NewTicker(s.cfg.ProgressEvery)
			defer t.Stop()
			for {
				select {
				case <-stop:
					s.progress(true)
					return
				case <-t.C:
					s.progress(false)
				}
			}
		}()
	}
	wg.Wait()
	s.Stats.LoadOver() // if the operation count ended the load first
	<-chaosDone
	close(stop)
	pw.Wait()
}

func (s *Sim) progress(last bool) {
	line := s.Stats.Snapshot().Line()
	switch {
	case s.cfg.ProgressLines:
		fmt.Fprintln(s.cfg.Progress, line)
	case last:
		fmt.Fprintf(s.cfg.Progress, "\r\033[K%s\n", line)
	default:
		fmt.Fprintf(s.cfg.Progress, "\r\033[K%s", line)
	}
}

// one runs one operation of the mix; an operation without an eligible
// actor (an unstake before any stake) gives way to another.
func (s *Sim) one(ctx context.Context, r *rand.Rand) {
	for range 8 {
		op := s.cfg.Mix.pick(r)
		err := op.Run(ctx, s, r)
		if errors.Is(err, ErrSkip) {
			continue
		}
		if errors.Is(err, errIndefinite) {
			s.model.inDoubt(op.Name, err)
		}
		s.Stats.OpDone(err == nil)
		return
	}
}
