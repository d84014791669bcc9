package config

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/theprotocol-dev/theprotocol/registry"
)

// This file holds the sections of Config that tune the roles of a node: the
// reputation bond, cross-registry settlement and the registry's tokens. Each
// section has its defaults, its flags and its checks side by side, so a new
// setting is added in one place.

// MaxXferBatch is the largest settlement batch a workflow carries (the
// settlement workflow's own cap; a test keeps the two equal).
const MaxXferBatch = 1000

// BondSettings are the reputation bond's maturity criteria.
type BondSettings struct {
	MinAge       time.Duration // THEPROTOCOL_BOND_MIN_AGE, default 720h (30 days)
	MinTransfers int64         // THEPROTOCOL_BOND_MIN_TRANSFERS, default 10
	MinTrust     int64         // THEPROTOCOL_BOND_MIN_TRUST, basis points, default 5000
	RecheckEvery time.Duration // THEPROTOCOL_BOND_RECHECK, default 168h (7 days)
}

// DefaultBondSettings are the bond criteria when nothing is configured.
func DefaultBondSettings() BondSettings {
	return BondSettings{MinAge: 720 * time.Hour, MinTransfers: 10, MinTrust: 5000, RecheckEvery: 168 * time.Hour}
}

func (s *BondSettings) fromEnv(r *envReader) {
	d := DefaultBondSettings()
	s.MinAge = r.duration("THEPROTOCOL_BOND_MIN_AGE", d.MinAge)
	s.MinTransfers = r.int64("THEPROTOCOL_BOND_MIN_TRANSFERS", d.MinTransfers)
	s.MinTrust = r.int64("THEPROTOCOL_BOND_MIN_TRUST", d.MinTrust)
	s.RecheckEvery = r.duration("THEPROTOCOL_BOND_RECHECK", d.RecheckEvery)
}

func (s *BondSettings) registerFlags(fs *flag.FlagSet) {
	fs.DurationVar(&s.MinAge, "bond-min-age", s.MinAge, "age before a reputation bond may mature (env THEPROTOCOL_BOND_MIN_AGE)")
	fs.Int64Var(&s.MinTransfers, "bond-min-transfers", s.MinTransfers, "transfers an agent must have sent before its bond matures (env THEPROTOCOL_BOND_MIN_TRANSFERS)")
	fs.Int64Var(&s.MinTrust, "bond-min-trust", s.MinTrust, "trust score, in basis points 0..10000, a bond needs to mature (env THEPROTOCOL_BOND_MIN_TRUST)")
	fs.DurationVar(&s.RecheckEvery, "bond-recheck", s.RecheckEvery, "wait between maturity checks of a bond that did not qualify (env THEPROTOCOL_BOND_RECHECK)")
}

// Validate reports every value out of range. Zero durations and a zero
// transfer count are refused rather than replaced: the bond workflow would
// silently read them as its own defaults.
func (s BondSettings) Validate() error {
	return errors.Join(
		positive("bond-min-age", "THEPROTOCOL_BOND_MIN_AGE", s.MinAge),
		atLeast("bond-min-transfers", "THEPROTOCOL_BOND_MIN_TRANSFERS", s.MinTransfers, 1),
		intRange("bond-min-trust", "THEPROTOCOL_BOND_MIN_TRUST", s.MinTrust, 0, 10000, "basis points, an integer in [0, 10000]"),
		positive("bond-recheck", "THEPROTOCOL_BOND_RECHECK", s.RecheckEvery),
	)
}

// XferSettings tune cross-registry settlement.
type XferSettings struct {
	MaxBatch       int           // THEPROTOCOL_XFER_MAX_BATCH (500; 1 = batching off)
	MaxAge         time.Duration // THEPROTOCOL_XFER_MAX_AGE (250ms)
	MaxInFlight    int           // THEPROTOCOL_XFER_MAX_IN_FLIGHT (4 per pair)
	MaxBacklog     int           // THEPROTOCOL_XFER_MAX_BACKLOG (0 = 3 × MaxBatch, ≥ 64): accepts wait while a pair has this many accepted, unsettled
	PrepareMaxAge  time.Duration // THEPROTOCOL_XFER_PREPARE_SWEEP_AGE (5m): the participant sweeper's threshold
	RecoverEvery   time.Duration // THEPROTOCOL_XFER_RECOVER_EVERY (30s)
	TemporalUIBase string        // THEPROTOCOL_TEMPORAL_UI (http://127.0.0.1:8233), no trailing slash
}

// DefaultXferSettings are the settlement settings when nothing is
// configured.
func DefaultXferSettings() XferSettings {
	return XferSettings{
		MaxBatch: 500, MaxAge: 250 * time.Millisecond, MaxInFlight: 4, MaxBacklog: 0,
		PrepareMaxAge: 5 * time.Minute, RecoverEvery: 30 * time.Second,
		TemporalUIBase: "http://127.0.0.1:8233",
	}
}

func (s *XferSettings) fromEnv(r *envReader) {
	d := DefaultXferSettings()
	s.MaxBatch = r.int("THEPROTOCOL_XFER_MAX_BATCH", d.MaxBatch)
	s.MaxAge = r.duration("THEPROTOCOL_XFER_MAX_AGE", d.MaxAge)
	s.MaxInFlight = r.int("THEPROTOCOL_XFER_MAX_IN_FLIGHT", d.MaxInFlight)
	s.MaxBacklog = r.int("THEPROTOCOL_XFER_MAX_BACKLOG", d.MaxBacklog)
	s.PrepareMaxAge = r.duration("THEPROTOCOL_XFER_PREPARE_SWEEP_AGE", d.PrepareMaxAge)
	s.RecoverEvery = r.duration("THEPROTOCOL_XFER_RECOVER_EVERY", d.RecoverEvery)
	s.TemporalUIBase = Env("THEPROTOCOL_TEMPORAL_UI", d.TemporalUIBase)
}

func (s *XferSettings) registerFlags(fs *flag.FlagSet) {
	fs.IntVar(&s.MaxBatch, "xfer-max-batch", s.MaxBatch, fmt.Sprintf("transfers per settlement workflow, 1..%d; 1 turns batching off (env THEPROTOCOL_XFER_MAX_BATCH)", MaxXferBatch))
	fs.DurationVar(&s.MaxAge, "xfer-max-age", s.MaxAge, "longest wait of an accepted transfer for its settlement batch (env THEPROTOCOL_XFER_MAX_AGE)")
	fs.IntVar(&s.MaxInFlight, "xfer-max-in-flight", s.MaxInFlight, "settlement workflows in flight per registry pair (env THEPROTOCOL_XFER_MAX_IN_FLIGHT)")
	fs.IntVar(&s.MaxBacklog, "xfer-max-backlog", s.MaxBacklog, "accepted, unsettled transfers per pair before accepts wait; 0 = 3 × max batch, at least 64 (env THEPROTOCOL_XFER_MAX_BACKLOG)")
	fs.DurationVar(&s.PrepareMaxAge, "xfer-prepare-sweep-age", s.PrepareMaxAge, "age of a participant's prepare before the sweeper asks the coordinator (env THEPROTOCOL_XFER_PREPARE_SWEEP_AGE)")
	fs.DurationVar(&s.RecoverEvery, "xfer-recover-every", s.RecoverEvery, "interval of the settlement recovery pass (env THEPROTOCOL_XFER_RECOVER_EVERY)")
	fs.StringVar(&s.TemporalUIBase, "temporal-ui-url", s.TemporalUIBase, "Temporal Web UI base URL used in saga links (env THEPROTOCOL_TEMPORAL_UI)")
}

// normalize trims the UI URL's trailing slashes (links append "/namespaces/…").
func (s *XferSettings) normalize() { s.TemporalUIBase = strings.TrimRight(s.TemporalUIBase, "/") }

// Validate reports every value out of range.
func (s XferSettings) Validate() error {
	var uiErr error
	if u, err := url.Parse(s.TemporalUIBase); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		uiErr = fmt.Errorf("temporal-ui-url (env THEPROTOCOL_TEMPORAL_UI) must be an absolute http or https URL such as http://127.0.0.1:8233, got %q", s.TemporalUIBase)
	}
	return errors.Join(
		intRange("xfer-max-batch", "THEPROTOCOL_XFER_MAX_BATCH", s.MaxBatch, 1, MaxXferBatch, fmt.Sprintf("an integer in [1, %d]", MaxXferBatch)),
		positive("xfer-max-age", "THEPROTOCOL_XFER_MAX_AGE", s.MaxAge),
		atLeast("xfer-max-in-flight", "THEPROTOCOL_XFER_MAX_IN_FLIGHT", s.MaxInFlight, 1),
		atLeast("xfer-max-backlog", "THEPROTOCOL_XFER_MAX_BACKLOG", s.MaxBacklog, 0),
		positive("xfer-prepare-sweep-age", "THEPROTOCOL_XFER_PREPARE_SWEEP_AGE", s.PrepareMaxAge),
		positive("xfer-recover-every", "THEPROTOCOL_XFER_RECOVER_EVERY", s.RecoverEvery),
		uiErr,
	)
}

// RegistrySettings are the registry role's signing key and token lifetimes.
type RegistrySettings struct {
	// SigningKeyFile is the registry's Ed25519 PEM key, created 0600 when
	// missing (THEPROTOCOL_REGISTRY_SIGNING_KEY); empty means
	// <data-dir>/<registry>/registry-signing-key.pem, see KeyFile.
	SigningKeyFile string
	TokenTTL       time.Duration // THEPROTOCOL_TOKEN_TTL, default 15m, at most 1h
	BootstrapTTL   time.Duration // THEPROTOCOL_BOOTSTRAP_TTL, default 15m, at most 1h
}

// DefaultRegistrySettings are the registry settings when nothing is
// configured.
func DefaultRegistrySettings() RegistrySettings {
	return RegistrySettings{TokenTTL: registry.DefaultTokenTTL, BootstrapTTL: registry.DefaultBootstrapTTL}
}

// KeyFile is the signing key file of registryID: SigningKeyFile when set,
// else its default place under dataDir.
func (s RegistrySettings) KeyFile(dataDir, registryID string) string {
	if s.SigningKeyFile != "" {
		return s.SigningKeyFile
	}
	return filepath.Join(dataDir, registryID, "registry-signing-key.pem")
}

func (s *RegistrySettings) fromEnv(r *envReader) {
	d := DefaultRegistrySettings()
	s.SigningKeyFile = Env("THEPROTOCOL_REGISTRY_SIGNING_KEY", d.SigningKeyFile)
	s.TokenTTL = r.duration("THEPROTOCOL_TOKEN_TTL", d.TokenTTL)
	s.BootstrapTTL = r.duration("THEPROTOCOL_BOOTSTRAP_TTL", d.BootstrapTTL)
}

func (s *RegistrySettings) registerFlags(fs *flag.FlagSet) {
	fs.StringVar(&s.SigningKeyFile, "registry-signing-key", s.SigningKeyFile, "registry Ed25519 PEM signing key, created 0600 if missing; empty: <data-dir>/<registry>/registry-signing-key.pem (env THEPROTOCOL_REGISTRY_SIGNING_KEY)")
	fs.DurationVar(&s.TokenTTL, "token-ttl", s.TokenTTL, fmt.Sprintf("bearer token lifetime, at most %s (env THEPROTOCOL_TOKEN_TTL)", registry.MaxTokenTTL))
	fs.DurationVar(&s.BootstrapTTL, "bootstrap-ttl", s.BootstrapTTL, fmt.Sprintf("bootstrap token lifetime, at most %s (env THEPROTOCOL_BOOTSTRAP_TTL)", registry.MaxBootstrapTTL))
}

// Validate reports every value out of range.
func (s RegistrySettings) Validate() error {
	return errors.Join(
		durationRange("token-ttl", "THEPROTOCOL_TOKEN_TTL", s.TokenTTL, registry.MaxTokenTTL),
		durationRange("bootstrap-ttl", "THEPROTOCOL_BOOTSTRAP_TTL", s.BootstrapTTL, registry.MaxBootstrapTTL),
	)
}

// --- checks shared by the sections ---------------------------------------

// The messages name the flag and its variable and say which form is
// accepted, so an operator can fix either without reading the code.

func positive(flagName, env string, d time.Duration) error {
	if d > 0 {
		return nil
	}
	return fmt.Errorf("%s (env %s) must be a positive duration such as 90s, 15m or 720h, got %s", flagName, env, d)
}

func durationRange(flagName, env string, d, most time.Duration) error {
	if d > 0 && d <= most {
		return nil
	}
	return fmt.Errorf("%s (env %s) must be a duration in (0, %s], such as 15m, got %s", flagName, env, most, d)
}

func atLeast[T int | int64](flagName, env string, v, lo T) error {
	if v >= lo {
		return nil
	}
	return fmt.Errorf("%s (env %s) must be an integer ≥ %d, got %d", flagName, env, lo, v)
}

func intRange[T int | int64](flagName, env string, v, lo, hi T, form string) error {
	if v >= lo && v <= hi {
		return nil
	}
	return fmt.Errorf("%s (env %s) must be %s, got %d", flagName, env, form, v)
}
