package xferstate

import (
	"math/rand/v2"
	"testing"
	"time"
)

var (
	t0      = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	live    = Hold{Active: true, ExpiresAt: t0.Add(time.Hour)}
	expired = Hold{Active: true, ExpiresAt: t0}                 // expires exactly at the decision
	gone    = Hold{Active: false, ExpiresAt: t0.Add(time.Hour)} // swept, posted or voided
)

func TestDecide(t *testing.T) {
	t.Parallel()
	commit := Proposal{Commit: true}
	abort := Proposal{Reason: "rejected by the target registry: no such agent"}
	abortKeep := Proposal{Reason: "rejected", KeepHoldOnAbort: true}
	commitKeep := Proposal{Commit: true, KeepHoldOnAbort: true}
	for _, tc := range []struct {
		name    string
		current Status
		p       Proposal
		h       Hold
		want    Decision
	}{
		{"commit with a live hold posts it", Pending, commit, live, Decision{Status: Committing, Hold: PostHold, Changed: true}},
		{"commit at the expiry instant aborts", Pending, commit, expired, Decision{Status: Aborted, Reason: ReasonHoldExpired, Hold: VoidHold, Changed: true}},
		{"commit after expiry keeps the hold when asked", Pending, commitKeep, expired, Decision{Status: Aborting, Reason: ReasonHoldExpired, Changed: true}},
		{"commit with an inactive hold aborts without voiding", Pending, commit, gone, Decision{Status: Aborted, Reason: ReasonHoldExpired, Changed: true}},
		{"abort voids a live hold", Pending, abort, live, Decision{Status: Aborted, Reason: abort.Reason, Hold: VoidHold, Changed: true}},
		{"abort of an inactive hold has nothing to void", Pending, abort, gone, Decision{Status: Aborted, Reason: abort.Reason, Changed: true}},
		{"abort keeping the hold waits for the acknowledgement", Pending, abortKeep, live, Decision{Status: Aborting, Reason: "rejected", Changed: true}},
		{"a committing transfer keeps its decision", Committing, abort, live, Decision{Status: Committing}},
		{"a committed transfer keeps its decision", Committed, abort, live, Decision{Status: Committed}},
		{"an aborting transfer is not committed late", Aborting, commit, live, Decision{Status: Aborting}},
		{"an aborted transfer is not committed late", Aborted, commit, live, Decision{Status: Aborted}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := Decide(tc.current, tc.p, tc.h, t0); got != tc.want {
				t.Fatalf("Decide(%s, %+v, %+v) = %+v, want %+v", tc.current, tc.p, tc.h, got, tc.want)
			}
		})
	}
}

func TestAckAbortAndConfirmCredit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		got  Decision
		want Decision
	}{
		{"ack voids the kept hold", AckAbort(Aborting, true), Decision{Status: Aborted, Hold: VoidHold, Changed: true}},
		{"ack of an expired hold only records the abort", AckAbort(Aborting, false), Decision{Status: Aborted, Changed: true}},
		{"ack of an aborted transfer is a no-op", AckAbort(Aborted, true), Decision{Status: Aborted}},
		{"ack never aborts a commit", AckAbort(Committing, true), Decision{Status: Committing}},
		{"ack of an undecided transfer waits for the decision", AckAbort(Pending, true), Decision{Status: Pending}},
		{"credit completes a commit", ConfirmCredit(Committing), Decision{Status: Committed, Changed: true}},
		{"credit twice is a no-op", ConfirmCredit(Committed), Decision{Status: Committed}},
		{"credit never revives an abort", ConfirmCredit(Aborting), Decision{Status: Aborting}},
		{"credit before the decision is ignored", ConfirmCredit(Pending), Decision{Status: Pending}},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, tc.got, tc.want)
		}
	}
}

func TestPropose(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		answered   bool
		vote       Status
		reason     string
		wantCommit bool
		wantReason string
	}{
		{true, Prepared, "", true, ""},
		{true, Rejected, "receiver x has no account on this registry", false, "rejected by the target registry: receiver x has no account on this registry"},
		{true, Unknown, "", false, "rejected by the target registry: "},
		{true, Committed, "", false, "rejected by the target registry: "}, // a prepare never answers committed for a new transfer
		{false, "", "", false, ReasonNotPrepared},
		{false, Prepared, "", false, ReasonNotPrepared}, // a failed call's partial answer does not count
	} {
		commit, reason := Propose(tc.answered, tc.vote, tc.reason)
		if commit != tc.wantCommit || reason != tc.wantReason {
			t.Errorf("Propose(%v, %q, %q) = %v, %q; want %v, %q", tc.answered, tc.vote, tc.reason, commit, reason, tc.wantCommit, tc.wantReason)
		}
	}
}

func TestResolveAndForPeer(t *testing.T) {
	t.Parallel()
	want := map[Status]Resolution{
		Pending: Wait, Committing: CommitPrepare, Committed: CommitPrepare,
		Aborting: AbortPrepare, Aborted: AbortPrepare, Unknown: AbortPrepare,
		Prepared: Wait, Rejected: Wait, "": Wait, "garbage": Wait,
	}
	for s, r := range want {
		if got := Resolve(s); got != r {
			t.Errorf("Resolve(%q) = %s, want %s", s, got, r)
		}
	}
	for _, s := range CoordinatorStatuses() {
		got := ForPeer(s)
		if s == Aborting && got != Aborted || s != Aborting && got != s {
			t.Errorf("ForPeer(%q) = %q", s, got)
		}
		// What the participant does with the reported status is what it
		// would do with the coordinator's own.
		if Resolve(got) != Resolve(s) {
			t.Errorf("ForPeer(%q) changes the participant's resolution", s)
		}
	}
}

// legal is the coordinator's transition table, written out on its own so
// the property test checks the rules against it rather than against
// themselves.
var legal = map[Status][]Status{
	Pending:    {Committing, Aborting, Aborted},
	Committing: {Committed},
	Aborting:   {Aborted},
}

func isLegal(from, to Status) bool {
	for _, s := range legal[from] {
		if s == to {
			return true
		}
	}
	return false
}

// TestRulesProperties drives the rules with random inputs (seeded, so a
// failure reproduces) and checks what must hold whatever the input.
func TestRulesProperties(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(16, 4))
	all := append(CoordinatorStatuses(), Prepared, Rejected, Unknown)
	pick := func() Status { return all[rng.IntN(len(all))] }
	for i := range 20000 {
		cur := pick()
		p := Proposal{Commit: rng.IntN(2) == 0, Reason: []string{"", "r", ReasonHoldExpired}[rng.IntN(3)], KeepHoldOnAbort: rng.IntN(2) == 0}
		h := Hold{Active: rng.IntN(4) != 0, ExpiresAt: t0.Add(time.Duration(rng.IntN(7)-3) * time.Second)}
		now := t0.Add(time.Duration(rng.IntN(3)-1) * time.Second)
		d := Decide(cur, p, h, now)

		// Never both commit and abort: the status and the hold action
		// tell the same story.
		if (d.Status == Committing) != (d.Hold == PostHold) && d.Changed {
			t.Fatalf("#%d: %s with hold action %s", i, d.Status, d.Hold)
		}
		// An expired or inactive hold never commits.
		if (!h.Active || !now.Before(h.ExpiresAt)) && d.Status == Committing && d.Changed {
			t.Fatalf("#%d: committed on hold %+v at %s", i, h, now)
		}
		// Only Pending moves, and only along the table.
		if d.Changed != (cur == Pending) || d.Changed && !isLegal(cur, d.Status) || !d.Changed && (d.Status != cur || d.Hold != KeepHold) {
			t.Fatalf("#%d: %s → %+v", i, cur, d)
		}
		// A commit is refused only for the hold; an abort keeps its reason.
		if cur == Pending && p.Commit && h.Active && now.Before(h.ExpiresAt) && d.Status != Committing {
			t.Fatalf("#%d: a commit with a usable hold became %s", i, d.Status)
		}
		if cur == Pending && !p.Commit && d.Reason != p.Reason {
			t.Fatalf("#%d: abort reason %q became %q", i, p.Reason, d.Reason)
		}
		// Voiding needs an active hold.
		if d.Hold == VoidHold && !h.Active {
			t.Fatalf("#%d: voids an inactive hold", i)
		}
		// Idempotent: deciding again, with any proposal, hold or time,
		// changes nothing.
		p2 := Proposal{Commit: rng.IntN(2) == 0, KeepHoldOnAbort: rng.IntN(2) == 0}
		h2 := Hold{Active: rng.IntN(2) == 0, ExpiresAt: now.Add(time.Hour)}
		if again := Decide(d.Status, p2, h2, now.Add(time.Second)); d.Changed && (again.Changed || again.Status != d.Status) {
			t.Fatalf("#%d: decided %s, then %+v", i, d.Status, again)
		}
		// The follow-up rules move only along the table, and once.
		for _, f := range []Decision{AckAbort(d.Status, h.Active), ConfirmCredit(d.Status)} {
			if f.Changed && !isLegal(d.Status, f.Status) || !f.Changed && f.Status != d.Status {
				t.Fatalf("#%d: %s → %+v", i, d.Status, f)
			}
			if f.Changed && (AckAbort(f.Status, true).Changed || ConfirmCredit(f.Status).Changed) {
				t.Fatalf("#%d: %s moves again", i, f.Status)
			}
			if f.Hold == PostHold {
				t.Fatalf("#%d: a follow-up posted a hold", i)
			}
		}
		// A participant never both commits and aborts on one answer, and
		// commits only on a commit decision.
		if r := Resolve(cur); r == CommitPrepare && cur != Committing && cur != Committed {
			t.Fatalf("#%d: commits a prepare on %s", i, cur)
		}
	}
}

func TestStatusSetsAreDistinct(t *testing.T) {
	t.Parallel()
	seen := map[Status]bool{}
	for _, s := range CoordinatorStatuses() {
		if seen[s] || s == "" {
			t.Fatalf("duplicate or empty coordinator status %q", s)
		}
		seen[s] = true
	}
	// A prepare shares only the final statuses with the coordinator.
	for _, s := range PrepareStatuses() {
		if seen[s] != (s == Committed || s == Aborted) {
			t.Fatalf("prepare status %q overlaps the coordinator's unexpectedly", s)
		}
	}
}
