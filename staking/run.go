package staking

import "time"

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
