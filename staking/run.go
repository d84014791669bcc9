package staking

import (
	"fmt"
	"time"
)

// DateLayout is how a reward run's date is written (UTC calendar day).
const DateLayout = "2006-01-02"

// RewardRun is one registry's reward run for one date. Its parameters are
// fixed when it starts, so a retried or resumed run pays with the same
// rates and pro-rata factor.
type RewardRun struct {
	Date               string // YYYY-MM-DD
	Cutoff             time.Time
	TVLRatioBps        int64
	APYBps             []int64 // per tier, in Tiers order
	DueUnits           int64   // Σ full rewards of the eligible positions
	TreasuryStartUnits int64
	PayNum, PayDen     int64 // pro-rata factor (1/1 when the treasury covers the day)
	PaidUnits          int64
	PaidPositions      int64
	ShortfallUnits     int64 // what the day owed beyond what it paid
	Completed          bool
	EligiblePositions  int64
	StartedAt          time.Time
	CompletedAt        *time.Time
}

// Short reports whether the treasury could not cover the whole day.
func (r RewardRun) Short() bool { return r.PayNum < r.PayDen || r.ShortfallUnits > 0 }

// RewardPage is the result of paying one page of positions.
type RewardPage struct {
	Examined   int   // positions read (paid or rounded to zero)
	Paid       int   // positions paid
	PaidUnits  int64 // Σ rewards paid in this page
	LastID     int64 // keyset cursor for the next page
	Done       bool  // no positions after LastID
	ShortUnits int64 // rewards cut because the treasury ran dry mid-run
}

// RunCatchupWindow is how far back a day's reward run may still be
// started: the daily schedule catches up missed days within it (a
// Temporal outage over midnight), and nothing older is ever paid.
const RunCatchupWindow = 72 * time.Hour

// CheckRunDay is the rule a new reward run must meet, now being the
// ledger's time. A run pays every eligible position a day of rewards from
// the treasury, once per date, so whoever could start one for any date
// with any cutoff could pay days that have not happened (each date is
// paid once: a run ahead of time pays today's positions for it), or days
// long past to positions created since. So:
//
//   - the date is a UTC day that has begun, and is at most
//     RunCatchupWindow older than today;
//   - the cutoff (positions created before it earn the day) falls within
//     that day and is not in the future.
//
// It returns nil or an error saying which condition failed.
func CheckRunDay(date string, cutoff, now time.Time) error {
	d, err := time.Parse(DateLayout, date)
	if err != nil {
		return fmt.Errorf("run date %q is not YYYY-MM-DD", date)
	}
	now = now.UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	switch {
	case d.After(today):
		return fmt.Errorf("the reward run for %s cannot start before that day (today is %s)", date, today.Format(DateLayout))
	case d.Before(today.Add(-RunCatchupWindow)):
		return fmt.Errorf("the reward run for %s is older than the %s catch-up window", date, RunCatchupWindow)
	case cutoff.Before(d) || !cutoff.Before(d.Add(24*time.Hour)):
		return fmt.Errorf("the cutoff %s is not within %s", cutoff.UTC().Format(time.RFC3339), date)
	case cutoff.After(now):
		return fmt.Errorf("the cutoff %s is in the future", cutoff.UTC().Format(time.RFC3339))
	}
	return nil
}
