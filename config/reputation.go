package config

import (
	"errors"
	"flag"
	"fmt"
	"strings"
)

// ReputationSettings configure the reputation runs on the node hosting
// the frame's EventStore (docs/adr/0022). The bond's trust floor is
// BondSettings.MinTrust.
type ReputationSettings struct {
	// Cron is the run schedule, five fields in UTC
	// (THEPROTOCOL_REPUTATION_CRON, default "0 * * * *": hourly). Applied to
	// the schedule at every start of the node.
	Cron string
	// PairCapUnits caps the transfer volume one agent's trust in another
	// counts (THEPROTOCOL_REPUTATION_PAIR_CAP_UNITS, default 1,000 AVT).
	PairCapUnits int64
	// MaxIterations caps the power iteration
	// (THEPROTOCOL_REPUTATION_MAX_ITERATIONS, default 200).
	MaxIterations int
	// PreTrusted are the DIDs the teleportation prior is spread over
	// (THEPROTOCOL_REPUTATION_PRE_TRUSTED, comma-separated; empty: uniform
	// over every agent).
	PreTrusted []string
	// BreachFloorBps: an agent whose earned trust falls from at least this
	// to below it in a run is flagged, ReputationThresholdBreached and
	// reputation_threshold_breaches_total (THEPROTOCOL_REPUTATION_BREACH_FLOOR,
	// basis points, default 2000; 0 turns flagging off).
	BreachFloorBps int64
	// SlashOnBreach also slashes the stake of a flagged agent held by the
	// EventStore node's own TEG (THEPROTOCOL_REPUTATION_SLASH_ON_BREACH,
	// default false).
	SlashOnBreach bool
}

// DefaultReputationSettings are the settings when nothing is configured.
func DefaultReputationSettings() ReputationSettings {
	return ReputationSettings{Cron: "0 * * * *", PairCapUnits: 1_000 * 100_000_000, MaxIterations: 200, BreachFloorBps: 2000}
}

func splitDIDs(s string) []string {
	var out []string
	for _, d := range strings.Split(s, ",") {
		if d = strings.TrimSpace(d); d != "" {
			out = append(out, d)
		}
	}
	return out
}

func (s *ReputationSettings) fromEnv(r *envReader) {
	d := DefaultReputationSettings()
	s.Cron = Env("THEPROTOCOL_REPUTATION_CRON", d.Cron)
	s.PairCapUnits = r.int64("THEPROTOCOL_REPUTATION_PAIR_CAP_UNITS", d.PairCapUnits)
	s.MaxIterations = r.int("THEPROTOCOL_REPUTATION_MAX_ITERATIONS", d.MaxIterations)
	s.PreTrusted = splitDIDs(Env("THEPROTOCOL_REPUTATION_PRE_TRUSTED", ""))
	s.BreachFloorBps = r.int64("THEPROTOCOL_REPUTATION_BREACH_FLOOR", d.BreachFloorBps)
	switch v := Env("THEPROTOCOL_REPUTATION_SLASH_ON_BREACH", "false"); v {
	case "true", "1":
		s.SlashOnBreach = true
	case "false", "0", "":
	default:
		r.errs = append(r.errs, fmt.Errorf("THEPROTOCOL_REPUTATION_SLASH_ON_BREACH must be true or false, got %q", v))
	}
}

// RegisterFlags binds the reputation flags to fs.
func (s *ReputationSettings) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&s.Cron, "reputation-cron", s.Cron, "reputation run schedule, a five-field cron in UTC (env THEPROTOCOL_REPUTATION_CRON)")
	fs.Int64Var(&s.PairCapUnits, "reputation-pair-cap-units", s.PairCapUnits, "transfer volume, in base units, one agent's trust in another counts at most (env THEPROTOCOL_REPUTATION_PAIR_CAP_UNITS)")
	fs.IntVar(&s.MaxIterations, "reputation-max-iterations", s.MaxIterations, "iteration cap of a reputation run (env THEPROTOCOL_REPUTATION_MAX_ITERATIONS)")
	fs.Func("reputation-pre-trusted", "comma-separated DIDs the teleportation prior is spread over; empty: every agent (env THEPROTOCOL_REPUTATION_PRE_TRUSTED)", func(v string) error {
		s.PreTrusted = splitDIDs(v)
		return nil
	})
	fs.BoolVar(&s.SlashOnBreach, "reputation-slash-on-breach", s.SlashOnBreach, "also slash the stake (on this node's TEG) of an agent flagged below the breach floor (env THEPROTOCOL_REPUTATION_SLASH_ON_BREACH)")
	fs.Int64Var(&s.BreachFloorBps, "reputation-breach-floor", s.BreachFloorBps, "earned trust, basis points, below which a falling agent is flagged; 0 turns flagging off (env THEPROTOCOL_REPUTATION_BREACH_FLOOR)")
}

// Validate reports every value out of range.
func (s ReputationSettings) Validate() error {
	var errs []error
	if f := strings.Fields(s.Cron); len(f) != 5 {
		errs = append(errs, fmt.Errorf("reputation-cron (env THEPROTOCOL_REPUTATION_CRON) must be a five-field cron expression, got %q", s.Cron))
	}
	errs = append(errs,
		intRange("reputation-pair-cap-units", "THEPROTOCOL_REPUTATION_PAIR_CAP_UNITS", s.PairCapUnits, 1, 1<<40, "base units, an integer in [1, 2^40]"),
		intRange("reputation-max-iterations", "THEPROTOCOL_REPUTATION_MAX_ITERATIONS", s.MaxIterations, 1, 100_000, "an integer in [1, 100000]"),
		intRange("reputation-breach-floor", "THEPROTOCOL_REPUTATION_BREACH_FLOOR", s.BreachFloorBps, 0, 10000, "basis points, an integer in [0, 10000]"))
	for _, d := range s.PreTrusted {
		if !strings.HasPrefix(d, "did:") {
			errs = append(errs, fmt.Errorf("reputation-pre-trusted (env THEPROTOCOL_REPUTATION_PRE_TRUSTED): %q is not a DID", d))
		}
	}
	return errors.Join(errs...)
}
