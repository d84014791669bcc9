package config

import (
	"errors"
	"flag"
	"fmt"
	"time"
)

// DiscoverySettings tune the walk of the federation graph (federation
// discovery): how many hops from this registry's own peers, and how often.
type DiscoverySettings struct {
	// Depth bounds the walk: 1 trusts the registry's own peers only.
	Depth int
	// Interval is the time between scheduled walks (a walk also runs on
	// demand, and the set is recomputed at once when this registry's own
	// licences change).
	Interval time.Duration
}

// Discovery bounds.
const (
	DefaultDiscoveryDepth    = 4
	MaxDiscoveryDepth        = 8
	DefaultDiscoveryInterval = time.Minute
	MinDiscoveryInterval     = 100 * time.Millisecond
)

// DefaultDiscoverySettings are the settings when nothing is configured.
func DefaultDiscoverySettings() DiscoverySettings {
	return DiscoverySettings{Depth: DefaultDiscoveryDepth, Interval: DefaultDiscoveryInterval}
}

func (s *DiscoverySettings) fromEnv(r *envReader) {
	d := DefaultDiscoverySettings()
	s.Depth = r.int("THEPROTOCOL_DISCOVERY_DEPTH", d.Depth)
	s.Interval = r.duration("THEPROTOCOL_DISCOVERY_INTERVAL", d.Interval)
}

func (s *DiscoverySettings) registerFlags(fs *flag.FlagSet) {
	fs.IntVar(&s.Depth, "discovery-depth", s.Depth, fmt.Sprintf("hops of the federation graph walked from this registry's peers, 1 to %d (env THEPROTOCOL_DISCOVERY_DEPTH)", MaxDiscoveryDepth))
	fs.DurationVar(&s.Interval, "discovery-interval", s.Interval, "time between scheduled walks of the federation graph (env THEPROTOCOL_DISCOVERY_INTERVAL)")
}

// Validate checks the bounds.
func (s DiscoverySettings) Validate() error {
	var errs []error
	if s.Depth < 1 || s.Depth > MaxDiscoveryDepth {
		errs = append(errs, fmt.Errorf("discovery-depth (THEPROTOCOL_DISCOVERY_DEPTH) must be 1 to %d, got %d", MaxDiscoveryDepth, s.Depth))
	}
	if s.Interval < MinDiscoveryInterval {
		errs = append(errs, fmt.Errorf("discovery-interval (THEPROTOCOL_DISCOVERY_INTERVAL) must be at least %s, got %s", MinDiscoveryInterval, s.Interval))
	}
	return errors.Join(errs...)
}
