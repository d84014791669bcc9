package config

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"time"
)

// ReconSettings tune balance checkpoints and the EventStore's
// reconciliation with them (docs/adr/0015).
type ReconSettings struct {
	// CheckpointEvery spaces the scheduled balance checkpoints of a TEG
	// (THEPROTOCOL_CHECKPOINT_EVERY, default 1m; the schedule ticks every
	// minute, so this is at least 1m).
	CheckpointEvery time.Duration
	// Grace is how long a reconciliation or netting difference may last
	// before the supply audit fails on it (THEPROTOCOL_RECON_GRACE, 2m).
	Grace time.Duration
	// Every is the interval between reconciliation passes on the
	// EventStore's node (THEPROTOCOL_RECON_EVERY, 5s).
	Every time.Duration
	// StaleAfter: the audit fails when no pass completed for this long
	// (THEPROTOCOL_RECON_STALE_AFTER, 5m).
	StaleAfter time.Duration
	// CheckpointMaxAge: the audit fails for a registry whose newest
	// checkpoint is older (THEPROTOCOL_CHECKPOINT_MAX_AGE, 10m).
	CheckpointMaxAge time.Duration
	// EventStoreMTLSURL is the mTLS listener of the node hosting the
	// frame's EventStore, which a mainframe without it asks for the audit
	// before minting (THEPROTOCOL_EVENTSTORE_MTLS_URL; empty: that
	// registry's mtls_port from the topology, on the EventStore URL's host).
	EventStoreMTLSURL string
}

// DefaultReconSettings are the settings when nothing is configured.
func DefaultReconSettings() ReconSettings {
	return ReconSettings{
		CheckpointEvery: time.Minute, Grace: 2 * time.Minute, Every: 5 * time.Second,
		StaleAfter: 5 * time.Minute, CheckpointMaxAge: 10 * time.Minute,
	}
}

func (s *ReconSettings) fromEnv(r *envReader) {
	d := DefaultReconSettings()
	s.CheckpointEvery = r.duration("THEPROTOCOL_CHECKPOINT_EVERY", d.CheckpointEvery)
	s.Grace = r.duration("THEPROTOCOL_RECON_GRACE", d.Grace)
	s.Every = r.duration("THEPROTOCOL_RECON_EVERY", d.Every)
	s.StaleAfter = r.duration("THEPROTOCOL_RECON_STALE_AFTER", d.StaleAfter)
	s.CheckpointMaxAge = r.duration("THEPROTOCOL_CHECKPOINT_MAX_AGE", d.CheckpointMaxAge)
	s.EventStoreMTLSURL = Env("THEPROTOCOL_EVENTSTORE_MTLS_URL", d.EventStoreMTLSURL)
}

func (s *ReconSettings) registerFlags(fs *flag.FlagSet) {
	fs.DurationVar(&s.CheckpointEvery, "checkpoint-every", s.CheckpointEvery, "spacing of a TEG's scheduled balance checkpoints, at least 1m (env THEPROTOCOL_CHECKPOINT_EVERY)")
	fs.DurationVar(&s.Grace, "recon-grace", s.Grace, "how long a reconciliation or transit-netting difference may last before the supply audit fails (env THEPROTOCOL_RECON_GRACE)")
	fs.DurationVar(&s.Every, "recon-every", s.Every, "interval between reconciliation passes on the EventStore's node (env THEPROTOCOL_RECON_EVERY)")
	fs.DurationVar(&s.StaleAfter, "recon-stale-after", s.StaleAfter, "the supply audit fails when reconciliation has not run for this long (env THEPROTOCOL_RECON_STALE_AFTER)")
	fs.DurationVar(&s.CheckpointMaxAge, "checkpoint-max-age", s.CheckpointMaxAge, "the supply audit fails for a registry whose newest balance checkpoint is older (env THEPROTOCOL_CHECKPOINT_MAX_AGE)")
	fs.StringVar(&s.EventStoreMTLSURL, "eventstore-mtls-url", s.EventStoreMTLSURL, "mTLS base URL of the node hosting the frame's EventStore; empty derives it from the topology (env THEPROTOCOL_EVENTSTORE_MTLS_URL)")
}

// Validate reports every value out of range, and orderings that would make
// the audit fail for no reason (a pass interval longer than the staleness
// bound, checkpoints spaced wider than their maximum age).
func (s ReconSettings) Validate() error {
	var errs []error
	if s.CheckpointEvery < time.Minute || s.CheckpointEvery > 24*time.Hour {
		errs = append(errs, fmt.Errorf("checkpoint-every (env THEPROTOCOL_CHECKPOINT_EVERY) must be a duration in [1m, 24h], got %s", s.CheckpointEvery))
	}
	errs = append(errs,
		positive("recon-grace", "THEPROTOCOL_RECON_GRACE", s.Grace),
		durationRange("recon-every", "THEPROTOCOL_RECON_EVERY", s.Every, time.Hour),
		positive("recon-stale-after", "THEPROTOCOL_RECON_STALE_AFTER", s.StaleAfter),
		positive("checkpoint-max-age", "THEPROTOCOL_CHECKPOINT_MAX_AGE", s.CheckpointMaxAge),
	)
	if s.Every > 0 && s.StaleAfter > 0 && s.StaleAfter <= 2*s.Every {
		errs = append(errs, fmt.Errorf("recon-stale-after (env THEPROTOCOL_RECON_STALE_AFTER) must be more than twice recon-every (%s), got %s", s.Every, s.StaleAfter))
	}
	if s.CheckpointMaxAge > 0 && s.CheckpointMaxAge <= s.CheckpointEvery {
		errs = append(errs, fmt.Errorf("checkpoint-max-age (env THEPROTOCOL_CHECKPOINT_MAX_AGE) must be longer than checkpoint-every (%s), got %s", s.CheckpointEvery, s.CheckpointMaxAge))
	}
	if s.EventStoreMTLSURL != "" {
		if u, err := url.Parse(s.EventStoreMTLSURL); err != nil || u.Scheme != "https" || u.Host == "" {
			errs = append(errs, fmt.Errorf("eventstore-mtls-url (env THEPROTOCOL_EVENTSTORE_MTLS_URL) must be an https URL such as https://10.0.0.5:9101, got %q", s.EventStoreMTLSURL))
		}
	}
	return errors.Join(errs...)
}
