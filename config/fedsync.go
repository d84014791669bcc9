package config

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// FederationSyncSettings tune the signed agent-card sync between peer
// registries and how a peering request from another registry is taken.
type FederationSyncSettings struct {
	// Interval between pulls of a peer's card feed once it had nothing
	// more (THEPROTOCOL_FEDERATION_SYNC_INTERVAL, default 10s).
	Interval time.Duration
	// MaxHops is how many relays a card may travel from its origin
	// (THEPROTOCOL_FEDERATION_MAX_HOPS, default 4, at most 16).
	MaxHops int
	// PageSize is the cards per pull (THEPROTOCOL_FEDERATION_SYNC_PAGE,
	// default 200, at most 1000).
	PageSize int
	// AutoAccept makes a peering request from another registry of the
	// frame active at once instead of pending until this registry's admin
	// accepts it (THEPROTOCOL_FEDERATION_AUTO_ACCEPT, default false).
	AutoAccept bool
}

// DefaultFederationSyncSettings are the settings when nothing is configured.
func DefaultFederationSyncSettings() FederationSyncSettings {
	return FederationSyncSettings{Interval: 10 * time.Second, MaxHops: 4, PageSize: 200}
}

// OrDefaults fills the zero fields with the defaults.
func (s FederationSyncSettings) OrDefaults() FederationSyncSettings {
	d := DefaultFederationSyncSettings()
	if s.Interval == 0 {
		s.Interval = d.Interval
	}
	if s.MaxHops == 0 {
		s.MaxHops = d.MaxHops
	}
	if s.PageSize == 0 {
		s.PageSize = d.PageSize
	}
	return s
}

func (s *FederationSyncSettings) fromEnv(r *envReader) {
	d := DefaultFederationSyncSettings()
	s.Interval = r.duration("THEPROTOCOL_FEDERATION_SYNC_INTERVAL", d.Interval)
	s.MaxHops = r.int("THEPROTOCOL_FEDERATION_MAX_HOPS", d.MaxHops)
	s.PageSize = r.int("THEPROTOCOL_FEDERATION_SYNC_PAGE", d.PageSize)
	s.AutoAccept = d.AutoAccept
	if v := Env("THEPROTOCOL_FEDERATION_AUTO_ACCEPT", ""); v != "" {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			r.errs = append(r.errs, fmt.Errorf("THEPROTOCOL_FEDERATION_AUTO_ACCEPT=%q: want true or false", v))
		}
		s.AutoAccept = b
	}
}

func (s *FederationSyncSettings) registerFlags(fs *flag.FlagSet) {
	fs.DurationVar(&s.Interval, "federation-sync-interval", s.Interval, "wait between pulls of a peer's signed card feed once it is exhausted (env THEPROTOCOL_FEDERATION_SYNC_INTERVAL)")
	fs.IntVar(&s.MaxHops, "federation-max-hops", s.MaxHops, "how many relays a signed agent card may travel from its origin registry, 1-16 (env THEPROTOCOL_FEDERATION_MAX_HOPS)")
	fs.IntVar(&s.PageSize, "federation-sync-page", s.PageSize, "signed cards per pull, 1-1000 (env THEPROTOCOL_FEDERATION_SYNC_PAGE)")
	fs.BoolVar(&s.AutoAccept, "federation-auto-accept", s.AutoAccept, "make another registry's peering request active at once instead of pending an admin's accept (env THEPROTOCOL_FEDERATION_AUTO_ACCEPT)")
}

// Validate reports settings out of range.
func (s FederationSyncSettings) Validate() error {
	var errs []error
	if s.Interval < 100*time.Millisecond || s.Interval > time.Hour {
		errs = append(errs, fmt.Errorf("federation-sync-interval (env THEPROTOCOL_FEDERATION_SYNC_INTERVAL) must be between 100ms and 1h, got %s", s.Interval))
	}
	if s.MaxHops < 1 || s.MaxHops > 16 {
		errs = append(errs, fmt.Errorf("federation-max-hops (env THEPROTOCOL_FEDERATION_MAX_HOPS) must be 1-16, got %d", s.MaxHops))
	}
	if s.PageSize < 1 || s.PageSize > 1000 {
		errs = append(errs, fmt.Errorf("federation-sync-page (env THEPROTOCOL_FEDERATION_SYNC_PAGE) must be 1-1000, got %d", s.PageSize))
	}
	return errors.Join(errs...)
}
