package xferstate

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

var recorded = Terms{From: "did:theprotocol:alice", To: "did:theprotocol:bob", AmountUnits: 1_000, Currency: "AVT"}

func TestCheckTerms(t *testing.T) {
	t.Parallel()
	commit := Proposal{Commit: true, KeepHoldOnAbort: true}
	rejected := Proposal{Reason: "rejected by the target registry: no such agent", KeepHoldOnAbort: true}
	same := recorded
	inflated := recorded
	inflated.AmountUnits = 1_000_000
	otherReceiver := recorded
	otherReceiver.To = "did:theprotocol:mallory"
	otherSender := recorded
	otherSender.From = "did:theprotocol:eve"
	otherCurrency := recorded
	otherCurrency.Currency = "XYZ"
	for _, tc := range []struct {
		name       string
		p          Proposal
		reported   *Terms
		wantCommit bool
		wantReason string // prefix
		wantDiff   string // substring; "" means no mismatch
	}{
		{"prepared with the recorded terms commits", commit, &same, true, "", ""},
		{"an inflated amount aborts", commit, &inflated, false, ReasonTermsMismatch, "amount 1000000 (recorded 1000)"},
		{"another receiver aborts", commit, &otherReceiver, false, ReasonTermsMismatch, `to "did:theprotocol:mallory"`},
		{"another sender aborts", commit, &otherSender, false, ReasonTermsMismatch, `from "did:theprotocol:eve"`},
		{"another currency aborts", commit, &otherCurrency, false, ReasonTermsMismatch, `currency "XYZ"`},
		{"prepared without terms aborts", commit, nil, false, ReasonTermsUnreported, "no terms reported"},
		{"a rejection keeps its reason when the terms agree", rejected, &same, false, rejected.Reason, ""},
		{"a rejection without terms keeps its reason", rejected, nil, false, rejected.Reason, ""},
		{"a rejection over other terms is reported as a mismatch", rejected, &inflated, false, ReasonTermsMismatch, "amount"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, diff := CheckTerms(tc.p, recorded, tc.reported)
			if got.Commit != tc.wantCommit || !strings.HasPrefix(got.Reason, tc.wantReason) {
				t.Fatalf("CheckTerms(%+v, %+v) = %+v, want commit=%v reason %q…", tc.p, tc.reported, got, tc.wantCommit, tc.wantReason)
			}
			if got.KeepHoldOnAbort != tc.p.KeepHoldOnAbort {
				t.Fatalf("CheckTerms changed KeepHoldOnAbort: %+v", got)
			}
			if (tc.wantDiff == "") != (diff == "") || !strings.Contains(diff, tc.wantDiff) {
				t.Fatalf("diff %q, want %q", diff, tc.wantDiff)
			}
			if tc.wantDiff != "" && tc.reported != nil && !strings.Contains(got.Reason, tc.wantDiff) {
				t.Fatalf("the reason %q does not say what differs (%q)", got.Reason, tc.wantDiff)
			}
		})
	}
}

// Whatever the proposal and the reported terms: a commit comes out only
// when the target reported exactly the recorded terms, a mismatch is
// always reported, and every reason fits the stored column as valid text.
func TestCheckTermsProperties(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(7, 11))
	strs := []string{"did:theprotocol:alice", "did:theprotocol:bob", "", "AVT", strings.Repeat("é", 300), "\xff\xfe", "XYZ"}
	pick := func() string { return strs[rng.IntN(len(strs))] }
	for i := 0; i < 20_000; i++ {
		rec := Terms{From: pick(), To: pick(), AmountUnits: rng.Int64N(3), Currency: pick()}
		var rep *Terms
		if rng.IntN(5) > 0 {
			r := rec
			switch rng.IntN(5) {
			case 0:
				r.From = pick()
			case 1:
				r.To = pick()
			case 2:
				r.AmountUnits = rng.Int64N(3)
			case 3:
				r.Currency = pick()
			}
			rep = &r
		}
		p := Proposal{Commit: rng.IntN(2) == 0, Reason: "x", KeepHoldOnAbort: rng.IntN(2) == 0}
		got, diff := CheckTerms(p, rec, rep)
		agree := rep != nil && *rep == rec
		if got.Commit && !agree {
			t.Fatalf("commit over terms that do not agree: %+v vs %+v", rec, rep)
		}
		if p.Commit && agree && !got.Commit {
			t.Fatalf("a commit over agreeing terms was refused: %+v", rec)
		}
		if rep != nil && (diff == "") != (*rep == rec) {
			t.Fatalf("diff %q for %+v vs %+v", diff, rec, *rep)
		}
		if len(got.Reason) > MaxReasonBytes || !utf8.ValidString(got.Reason) {
			t.Fatalf("reason of %d bytes, valid UTF-8 %v", len(got.Reason), utf8.ValidString(got.Reason))
		}
	}
}
