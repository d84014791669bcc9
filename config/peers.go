package config

import (
	"errors"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// DefaultExposureCapUnits is the default cap on what one peer registry may
// credit on this TEG through its transit account, net of what this TEG sent
// it: 1,000,000 AVT in base units.
const DefaultExposureCapUnits int64 = 1_000_000 * 100_000_000

// PeerSettings limit what peer registries may do on this TEG.
type PeerSettings struct {
	// ExposureCapUnits caps every peer's exposure (the net amount it
	// credited here through transit:<peer>), base units
	// (THEPROTOCOL_XFER_EXPOSURE_CAP, default DefaultExposureCapUnits).
	ExposureCapUnits int64
	// ExposureCaps overrides the cap per peer registry
	// (THEPROTOCOL_XFER_EXPOSURE_CAPS, "registry=units,registry=units").
	ExposureCaps ExposureCaps
}

// DefaultPeerSettings are the peer limits when nothing is configured.
func DefaultPeerSettings() PeerSettings {
	return PeerSettings{ExposureCapUnits: DefaultExposureCapUnits}
}

// IsZero reports whether s was left unset (a node then takes the
// defaults; a configured default cap is never 0, Validate refuses it).
func (s PeerSettings) IsZero() bool { return s.ExposureCapUnits == 0 && len(s.ExposureCaps) == 0 }

func (s *PeerSettings) fromEnv(r *envReader) {
	d := DefaultPeerSettings()
	s.ExposureCapUnits = r.int64("THEPROTOCOL_XFER_EXPOSURE_CAP", d.ExposureCapUnits)
	s.ExposureCaps = nil
	if v := Env("THEPROTOCOL_XFER_EXPOSURE_CAPS", ""); v != "" {
		if err := s.ExposureCaps.Set(v); err != nil {
			r.errs = append(r.errs, fmt.Errorf("THEPROTOCOL_XFER_EXPOSURE_CAPS=%q: %w", v, err))
		}
	}
}

func (s *PeerSettings) registerFlags(fs *flag.FlagSet) {
	fs.Int64Var(&s.ExposureCapUnits, "xfer-exposure-cap", s.ExposureCapUnits,
		"most a peer registry may credit here through its transit account, net of what this registry sent it, in base units (env THEPROTOCOL_XFER_EXPOSURE_CAP)")
	fs.Var(&s.ExposureCaps, "xfer-exposure-caps",
		"per-peer exposure caps overriding xfer-exposure-cap, as registry=units,registry=units (env THEPROTOCOL_XFER_EXPOSURE_CAPS)")
}

// Validate reports every value out of range. The default cap must be
// positive (a zero would read as "not configured"); a peer's own cap may
// be 0, refusing any net credit from it.
func (s PeerSettings) Validate() error {
	errs := []error{atLeast("xfer-exposure-cap", "THEPROTOCOL_XFER_EXPOSURE_CAP", s.ExposureCapUnits, 1)}
	for _, peer := range s.ExposureCaps.peers() {
		v := s.ExposureCaps[peer]
		if !idPattern.MatchString(peer) {
			errs = append(errs, fmt.Errorf("xfer-exposure-caps (env THEPROTOCOL_XFER_EXPOSURE_CAPS): %q is not a registry ID", peer))
		}
		if v < 0 {
			errs = append(errs, fmt.Errorf("xfer-exposure-caps (env THEPROTOCOL_XFER_EXPOSURE_CAPS): the cap of %s must be an integer ≥ 0, got %d", peer, v))
		}
	}
	return errors.Join(errs...)
}

// ExposureCaps are per-peer exposure caps in base units, keyed by registry
// ID. As a flag it reads registry=units pairs separated by commas; each
// use of the flag replaces the whole set.
type ExposureCaps map[string]int64

var _ flag.Value = (*ExposureCaps)(nil)

// String renders the caps in the flag's form, sorted by registry.
func (c ExposureCaps) String() string {
	parts := make([]string, 0, len(c))
	for _, p := range c.peers() {
		parts = append(parts, p+"="+strconv.FormatInt(c[p], 10))
	}
	return strings.Join(parts, ",")
}

// Set parses registry=units[,registry=units…]; an empty value clears the
// set.
func (c *ExposureCaps) Set(v string) error {
	out := ExposureCaps{}
	for item := range strings.SplitSeq(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		peer, units, ok := strings.Cut(item, "=")
		peer = strings.TrimSpace(peer)
		if !ok || peer == "" {
			return fmt.Errorf("want registry=units pairs separated by commas, such as op1=500000000000, got %q", item)
		}
		n, err := strconv.ParseInt(strings.TrimSpace(units), 10, 64)
		if err != nil {
			return fmt.Errorf("cap of %s: want a decimal integer of base units, got %q", peer, units)
		}
		if _, dup := out[peer]; dup {
			return fmt.Errorf("registry %s named twice", peer)
		}
		out[peer] = n
	}
	if len(out) == 0 {
		out = nil
	}
	*c = out
	return nil
}

func (c ExposureCaps) peers() []string {
	ps := make([]string, 0, len(c))
	for p := range c {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}
