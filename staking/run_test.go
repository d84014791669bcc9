package staking

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestCheckRunDay(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 6, 7, 30, 0, 0, time.UTC)
	midnight := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		date   string
		cutoff time.Time
		want   string // "" = allowed; else a substring of the error
	}{
		{"today at the schedule's midnight", "2026-12-06", midnight, ""},
		{"today, started by hand", "2026-12-06", now.Add(-time.Minute), ""},
		{"a cutoff of now", "2026-12-06", now, ""},
		{"a missed day caught up", "2026-12-04", time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC), ""},
		{"the oldest day the window allows", "2026-12-03", time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC), ""},
		{"a cutoff in another zone, same instant", "2026-12-06", midnight.In(time.FixedZone("x", -5*3600)), ""},
		{"tomorrow", "2026-12-07", time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC), "cannot start before that day"},
		{"a year ahead", "2027-12-06", now, "cannot start before that day"},
		{"older than the window", "2026-12-02", time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC), "older than"},
		{"a day long past", "2024-01-01", time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), "older than"},
		{"a past day paying positions created since", "2026-12-05", now, "not within"},
		{"a cutoff before the day", "2026-12-06", midnight.Add(-time.Second), "not within"},
		{"a cutoff in the future", "2026-12-06", now.Add(time.Second), "in the future"},
		{"not a date", "12/06/2026", now, "not YYYY-MM-DD"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := CheckRunDay(tc.date, tc.cutoff, now)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("CheckRunDay(%s, %s) = %v, want allowed", tc.date, tc.cutoff, err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("CheckRunDay(%s, %s) = %v, want %q", tc.date, tc.cutoff, err, tc.want)
			}
		})
	}
}

// Whatever date, cutoff and clock: an allowed run is for a day that has
// begun and is within the catch-up window, and pays only positions
// created during that day and before now; the schedule's own runs (the
// day's midnight, now within the window) are always allowed.
func TestCheckRunDayProperties(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 5))
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 50_000; i++ {
		now := base.Add(time.Duration(rng.Int64N(int64(400 * 24 * time.Hour))))
		day := base.Add(time.Duration(rng.IntN(400)) * 24 * time.Hour)
		cutoff := day.Add(time.Duration(rng.Int64N(int64(72*time.Hour))) - 24*time.Hour)
		date := day.Format(DateLayout)
		err := CheckRunDay(date, cutoff, now)
		if err == nil {
			if day.After(now) || now.Sub(day) >= RunCatchupWindow+24*time.Hour {
				t.Fatalf("allowed %s at %s: outside the window", date, now)
			}
			if cutoff.Before(day) || !cutoff.Before(day.Add(24*time.Hour)) || cutoff.After(now) {
				t.Fatalf("allowed cutoff %s for %s at %s", cutoff, date, now)
			}
		}
		if since := now.Sub(day); since >= 0 && since < RunCatchupWindow {
			if err := CheckRunDay(date, day, now); err != nil {
				t.Fatalf("the schedule's run of %s at %s refused: %v", date, now, err)
			}
		}
	}
}
