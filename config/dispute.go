package config

import (
	"errors"
	"flag"
	"time"

	"github.com/theprotocol-dev/theprotocol/dispute"
)

// DisputeSettings are the dispute rules a registry applies (package
// dispute; fixed into each dispute when it opens).
type DisputeSettings struct {
	OpenWindow     time.Duration // THEPROTOCOL_DISPUTE_OPEN_WINDOW, default 720h (30 days after the transfer)
	ResponseWindow time.Duration // THEPROTOCOL_DISPUTE_RESPONSE_WINDOW, default 168h (7 days)
	RulingWindow   time.Duration // THEPROTOCOL_DISPUTE_RULING_WINDOW, default 336h (14 days after the response window)
	FeeBps         int64         // THEPROTOCOL_DISPUTE_FEE_BPS, default 500 (5 % of a lost claim, to the treasury)
}

// DefaultDisputeSettings are dispute.DefaultRules.
func DefaultDisputeSettings() DisputeSettings {
	r := dispute.DefaultRules
	return DisputeSettings{OpenWindow: r.OpenWindow, ResponseWindow: r.ResponseWindow, RulingWindow: r.RulingWindow, FeeBps: r.FeeBps}
}

// Rules are the settings as the dispute rules.
func (s DisputeSettings) Rules() dispute.Rules {
	return dispute.Rules{OpenWindow: s.OpenWindow, ResponseWindow: s.ResponseWindow, RulingWindow: s.RulingWindow, FeeBps: s.FeeBps}
}

func (s *DisputeSettings) fromEnv(r *envReader) {
	d := DefaultDisputeSettings()
	s.OpenWindow = r.duration("THEPROTOCOL_DISPUTE_OPEN_WINDOW", d.OpenWindow)
	s.ResponseWindow = r.duration("THEPROTOCOL_DISPUTE_RESPONSE_WINDOW", d.ResponseWindow)
	s.RulingWindow = r.duration("THEPROTOCOL_DISPUTE_RULING_WINDOW", d.RulingWindow)
	s.FeeBps = r.int64("THEPROTOCOL_DISPUTE_FEE_BPS", d.FeeBps)
}

func (s *DisputeSettings) registerFlags(fs *flag.FlagSet) {
	fs.DurationVar(&s.OpenWindow, "dispute-open-window", s.OpenWindow, "how long after a transfer its parties may dispute it (env THEPROTOCOL_DISPUTE_OPEN_WINDOW)")
	fs.DurationVar(&s.ResponseWindow, "dispute-response-window", s.ResponseWindow, "how long the respondent has to answer a dispute (env THEPROTOCOL_DISPUTE_RESPONSE_WINDOW)")
	fs.DurationVar(&s.RulingWindow, "dispute-ruling-window", s.RulingWindow, "how long the tribunal has to rule after the response window; then the dispute lapses (env THEPROTOCOL_DISPUTE_RULING_WINDOW)")
	fs.Int64Var(&s.FeeBps, "dispute-fee-bps", s.FeeBps, "fee a complainant who loses pays to the treasury, basis points of the claim (env THEPROTOCOL_DISPUTE_FEE_BPS)")
}

// Validate reports every value out of range.
func (s DisputeSettings) Validate() error {
	window := func(flagName, env string, d time.Duration) error {
		if d > dispute.MaxWindow {
			return errors.New(flagName + " (env " + env + ") must be at most " + dispute.MaxWindow.String())
		}
		return positive(flagName, env, d)
	}
	return errors.Join(
		window("dispute-open-window", "THEPROTOCOL_DISPUTE_OPEN_WINDOW", s.OpenWindow),
		window("dispute-response-window", "THEPROTOCOL_DISPUTE_RESPONSE_WINDOW", s.ResponseWindow),
		window("dispute-ruling-window", "THEPROTOCOL_DISPUTE_RULING_WINDOW", s.RulingWindow),
		intRange("dispute-fee-bps", "THEPROTOCOL_DISPUTE_FEE_BPS", s.FeeBps, 0, dispute.MaxFeeBps, "basis points, an integer in [0, 10000]"),
	)
}
