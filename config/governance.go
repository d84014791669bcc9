package config

import (
	"flag"
	"fmt"
	"strconv"

	"github.com/theprotocol-dev/theprotocol/governance"
)

// GovernanceSettings bound what a proposal may ask for and how long a
// passed change waits before it is enacted (governance.Limits). A test
// stack shortens the windows; production keeps the defaults.
type GovernanceSettings struct {
	governance.Limits
	// SqrtByDeveloper takes the √ of voting power over all the stake of
	// one developer's agents (the split-stake defence across agents), on
	// nodes that host the registry with the TEG. Off by default.
	SqrtByDeveloper bool
}

// DefaultGovernanceSettings are governance.DefaultLimits.
func DefaultGovernanceSettings() GovernanceSettings {
	return GovernanceSettings{Limits: governance.DefaultLimits}
}

// IsZero reports whether s was left unset.
func (s GovernanceSettings) IsZero() bool {
	return s.Limits == (governance.Limits{}) && !s.SqrtByDeveloper
}

func (s *GovernanceSettings) fromEnv(r *envReader) {
	d := DefaultGovernanceSettings()
	s.MinWindow = r.duration("THEPROTOCOL_GOVERNANCE_MIN_WINDOW", d.MinWindow)
	s.MaxWindow = r.duration("THEPROTOCOL_GOVERNANCE_MAX_WINDOW", d.MaxWindow)
	s.MinQuorumBps = r.int64("THEPROTOCOL_GOVERNANCE_MIN_QUORUM_BPS", d.MinQuorumBps)
	s.MinThreshold = r.int64("THEPROTOCOL_GOVERNANCE_MIN_THRESHOLD_BPS", d.MinThreshold)
	s.MinPower = r.int64("THEPROTOCOL_GOVERNANCE_MIN_POWER", d.MinPower)
	s.VetoWindow = r.duration("THEPROTOCOL_GOVERNANCE_VETO_WINDOW", d.VetoWindow)
	s.CollectWindow = r.duration("THEPROTOCOL_GOVERNANCE_COLLECT_WINDOW", governance.DefaultCollectWindow)
	s.SqrtByDeveloper = d.SqrtByDeveloper
	if v := Env("THEPROTOCOL_GOVERNANCE_SQRT_BY_DEVELOPER", ""); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			r.errs = append(r.errs, fmt.Errorf("THEPROTOCOL_GOVERNANCE_SQRT_BY_DEVELOPER=%q: want true or false", v))
		}
		s.SqrtByDeveloper = b
	}
}

func (s *GovernanceSettings) registerFlags(fs *flag.FlagSet) {
	fs.DurationVar(&s.MinWindow, "governance-min-window", s.MinWindow, "shortest voting window a proposal may ask for (env THEPROTOCOL_GOVERNANCE_MIN_WINDOW)")
	fs.DurationVar(&s.MaxWindow, "governance-max-window", s.MaxWindow, "longest voting window (env THEPROTOCOL_GOVERNANCE_MAX_WINDOW)")
	fs.Int64Var(&s.MinQuorumBps, "governance-min-quorum-bps", s.MinQuorumBps, "lowest quorum a proposal may ask for, basis points (env THEPROTOCOL_GOVERNANCE_MIN_QUORUM_BPS)")
	fs.Int64Var(&s.MinThreshold, "governance-min-threshold-bps", s.MinThreshold, "lowest pass threshold, basis points, at least 5000 (env THEPROTOCOL_GOVERNANCE_MIN_THRESHOLD_BPS)")
	fs.Int64Var(&s.MinPower, "governance-min-power", s.MinPower, "voting power a proposer needs from its own stake (env THEPROTOCOL_GOVERNANCE_MIN_POWER)")
	fs.BoolVar(&s.SqrtByDeveloper, "governance-sqrt-by-developer", s.SqrtByDeveloper, "take the √ of voting power over all the stake of one developer's agents (env THEPROTOCOL_GOVERNANCE_SQRT_BY_DEVELOPER)")
	fs.DurationVar(&s.CollectWindow, "governance-collect-window", s.CollectWindow, "how long after a federation proposal's window its originating registry retries unavailable peers before tallying without them (env THEPROTOCOL_GOVERNANCE_COLLECT_WINDOW)")
	fs.DurationVar(&s.VetoWindow, "governance-veto-window", s.VetoWindow, "how long a passed change waits, vetoable, before it is enacted (env THEPROTOCOL_GOVERNANCE_VETO_WINDOW)")
}

// Validate checks the limits.
func (s GovernanceSettings) Validate() error {
	if err := s.Limits.Validate(); err != nil {
		return fmt.Errorf("governance settings (flags governance-*, env THEPROTOCOL_GOVERNANCE_*): %w", err)
	}
	return nil
}
