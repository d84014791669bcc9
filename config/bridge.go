package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
)

// BridgeSettings tune the cross-frame bridge on a frame's mainframe
// (docs/adr/0020).
type BridgeSettings struct {
	// Window is how long a peer frame may apply an operation before it
	// refuses it and this frame refunds (THEPROTOCOL_BRIDGE_WINDOW, 30s).
	Window time.Duration
	// MaxBatch bounds one BridgeBatch workflow; 1 runs one workflow per
	// operation (THEPROTOCOL_BRIDGE_MAX_BATCH, 500).
	MaxBatch int
	// MaxInFlight bounds the batch workflows of a frame pair at a time
	// (THEPROTOCOL_BRIDGE_MAX_IN_FLIGHT, 4).
	MaxInFlight int
	// MaxBacklog bounds the accepted, unsettled operations of a pair;
	// past it accepting waits (THEPROTOCOL_BRIDGE_MAX_BACKLOG, 3 × MaxBatch).
	MaxBacklog int
	// PeerCards are the frame cards (JSON files a peer frame's mainframe
	// writes to <data dir>/bridge/frame-card.json) of the frames to
	// bridge with, comma-separated paths: connected at start, across
	// processes and hosts (THEPROTOCOL_BRIDGE_PEER_CARDS, none).
	PeerCards string
	// AdvertiseHost replaces the listeners' host in this frame's own card,
	// for peers on other hosts (THEPROTOCOL_BRIDGE_ADVERTISE_HOST).
	AdvertiseHost string
}

// DefaultBridgeSettings are the settings when nothing is configured.
func DefaultBridgeSettings() BridgeSettings {
	return BridgeSettings{Window: 30 * time.Second, MaxBatch: 500, MaxInFlight: 4, MaxBacklog: 1500}
}

func (s *BridgeSettings) fromEnv(r *envReader) {
	d := DefaultBridgeSettings()
	s.Window = r.duration("THEPROTOCOL_BRIDGE_WINDOW", d.Window)
	s.MaxBatch = r.int("THEPROTOCOL_BRIDGE_MAX_BATCH", d.MaxBatch)
	s.MaxInFlight = r.int("THEPROTOCOL_BRIDGE_MAX_IN_FLIGHT", d.MaxInFlight)
	s.MaxBacklog = r.int("THEPROTOCOL_BRIDGE_MAX_BACKLOG", d.MaxBacklog)
	s.PeerCards = Env("THEPROTOCOL_BRIDGE_PEER_CARDS", "")
	s.AdvertiseHost = Env("THEPROTOCOL_BRIDGE_ADVERTISE_HOST", "")
}

func (s *BridgeSettings) registerFlags(fs *flag.FlagSet) {
	fs.DurationVar(&s.Window, "bridge-window", s.Window, "how long a peer frame may apply a bridge operation before this frame refunds it (env THEPROTOCOL_BRIDGE_WINDOW)")
	fs.IntVar(&s.MaxBatch, "bridge-max-batch", s.MaxBatch, "bridge operations per batch workflow, 1 = one workflow each (env THEPROTOCOL_BRIDGE_MAX_BATCH)")
	fs.IntVar(&s.MaxInFlight, "bridge-max-in-flight", s.MaxInFlight, "batch workflows of one frame pair at a time (env THEPROTOCOL_BRIDGE_MAX_IN_FLIGHT)")
	fs.StringVar(&s.PeerCards, "bridge-peer-cards", s.PeerCards, "comma-separated frame card files of the peer frames to bridge with, connected at start (env THEPROTOCOL_BRIDGE_PEER_CARDS)")
	fs.StringVar(&s.AdvertiseHost, "bridge-advertise-host", s.AdvertiseHost, "host written into this frame's card instead of the listen address (env THEPROTOCOL_BRIDGE_ADVERTISE_HOST)")
	fs.IntVar(&s.MaxBacklog, "bridge-max-backlog", s.MaxBacklog, "accepted, unsettled bridge operations of one frame pair before accepting waits (env THEPROTOCOL_BRIDGE_MAX_BACKLOG)")
}

// Validate checks the ranges.
func (s BridgeSettings) Validate() error {
	var errs []error
	if s.Window < time.Second || s.Window > time.Hour {
		errs = append(errs, fmt.Errorf("bridge-window (env THEPROTOCOL_BRIDGE_WINDOW) must be in [1s, 1h], got %s", s.Window))
	}
	if s.MaxBatch < 1 || s.MaxBatch > 500 {
		errs = append(errs, fmt.Errorf("bridge-max-batch (env THEPROTOCOL_BRIDGE_MAX_BATCH) must be in [1, 500], got %d", s.MaxBatch))
	}
	if s.MaxInFlight < 1 || s.MaxInFlight > 64 {
		errs = append(errs, fmt.Errorf("bridge-max-in-flight (env THEPROTOCOL_BRIDGE_MAX_IN_FLIGHT) must be in [1, 64], got %d", s.MaxInFlight))
	}
	if s.MaxBacklog < s.MaxBatch || s.MaxBacklog > 1_000_000 {
		errs = append(errs, fmt.Errorf("bridge-max-backlog (env THEPROTOCOL_BRIDGE_MAX_BACKLOG) must be in [bridge-max-batch, 1000000], got %d", s.MaxBacklog))
	}
	for _, p := range s.PeerCardList() {
		if _, err := os.Stat(p); err != nil {
			errs = append(errs, fmt.Errorf("bridge-peer-cards (env THEPROTOCOL_BRIDGE_PEER_CARDS): %w", err))
		}
	}
	if strings.ContainsAny(s.AdvertiseHost, "/@[] \t") {
		errs = append(errs, fmt.Errorf("bridge-advertise-host (env THEPROTOCOL_BRIDGE_ADVERTISE_HOST) must be a host name or address, got %q", s.AdvertiseHost))
	}
	return errors.Join(errs...)
}

// PeerCardList returns the configured frame card paths.
func (s BridgeSettings) PeerCardList() []string {
	var out []string
	for _, p := range strings.Split(s.PeerCards, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
