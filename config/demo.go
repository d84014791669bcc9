package config

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DemoSettings drive the demonstration agents of `theprotocol dev`: a
// service agent selling a paid call and a client agent paying for it on a
// schedule, both through the SDK only (package sdk/demo).
type DemoSettings struct {
	Agents   bool          // THEPROTOCOL_DEMO_AGENTS, default true (dev only)
	Interval time.Duration // THEPROTOCOL_DEMO_INTERVAL, default 10s: time between paid calls
}

// DefaultDemoSettings are on, one call every 10s.
func DefaultDemoSettings() DemoSettings {
	return DemoSettings{Agents: true, Interval: 10 * time.Second}
}

func (s *DemoSettings) fromEnv(r *envReader) {
	d := DefaultDemoSettings()
	s.Agents = d.Agents
	if v := strings.TrimSpace(Env("THEPROTOCOL_DEMO_AGENTS", "")); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			r.errs = append(r.errs, fmt.Errorf("THEPROTOCOL_DEMO_AGENTS=%q: want true or false", v))
		} else {
			s.Agents = b
		}
	}
	s.Interval = r.duration("THEPROTOCOL_DEMO_INTERVAL", d.Interval)
}

func (s *DemoSettings) registerFlags(fs *flag.FlagSet) {
	fs.BoolVar(&s.Agents, "demo-agents", s.Agents, "dev: run the demonstration agents' paid calls (env THEPROTOCOL_DEMO_AGENTS)")
	fs.DurationVar(&s.Interval, "demo-interval", s.Interval, "dev: time between the demonstration agents' paid calls (env THEPROTOCOL_DEMO_INTERVAL)")
}

// Validate reports an interval out of range (1s..1h).
func (s DemoSettings) Validate() error {
	if s.Interval < time.Second || s.Interval > time.Hour {
		return fmt.Errorf("demo-interval (env THEPROTOCOL_DEMO_INTERVAL) must be within 1s..1h, got %s", s.Interval)
	}
	return nil
}
