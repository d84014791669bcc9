package ledgerstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/governance"
	"github.com/theprotocol-dev/theprotocol/testenv"
)

// BenchmarkTally100kOnTheLedger: a proposal over 100,000 staked voters,
// a third of them delegating to a voter that votes, the rest voting
// directly; it reports the snapshot taken when the proposal opens and
// the tally (one transaction: lock, read snapshot and votes, count,
// record, ProposalTallied), each in seconds:
//
//	go test ./db/ledgerstore -run '^$' -bench Tally100k -benchtime 1x
//
// The positions, delegations and votes are seeded with SQL (the
// benchmark is about counting them, not about staking).
func BenchmarkTally100kOnTheLedger(b *testing.B) {
	const voters = 100_000
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		tdb := testenv.NewDB(b, db.RoleTEG)
		now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
		clock := &fakeClock{t: now}
		s := ledgerstore.New(tdb.Pool, ledgerstore.Options{Frame: "alpha", Registry: "alpha-main", Mainframe: true, Now: clock.Now})
		_, err := tdb.Pool.Exec(ctx, `
			INSERT INTO stake_positions (owner, tier, principal_units, staked_units, auto_compound, status, unlock_at, client_key, created_at, updated_at)
			SELECT 'did:theprotocol:' || lpad(g::text, 36, '0'), '180d', 1000000000 + g * 1000, 1000000000 + g * 1000, false, 'active',
			       $1::timestamptz + make_interval(days => 1 + g % 179), 'k', $1, $1
			FROM generate_series(1, $2::int) g`, now, voters)
		require.NoError(b, err)
		_, err = tdb.Pool.Exec(ctx, `
			INSERT INTO governance_delegations (delegator, delegate, version, updated_at)
			SELECT 'did:theprotocol:' || lpad(g::text, 36, '0'), 'did:theprotocol:' || lpad((g + 1)::text, 36, '0'), 1, $1
			FROM generate_series(1, $2::int) g WHERE g % 3 = 0 AND g < $2`, now, voters)
		require.NoError(b, err)

		b.StartTimer()
		t0 := time.Now()
		id := uuid.New()
		_, err = s.CreateProposal(ctx, ledgerstore.ProposalInput{ID: id, Proposer: "did:theprotocol:" + pad(1), MinPower: 1, VetoWindow: time.Hour,
			Draft: governance.Draft{Title: "bench", Window: time.Hour, QuorumBps: 3340, ThresholdBps: 5000}})
		require.NoError(b, err)
		snapshot := time.Since(t0)
		b.StopTimer()
		_, err = tdb.Pool.Exec(ctx, `
			INSERT INTO governance_votes (proposal_id, voter, choice, version, cast_at, updated_at)
			SELECT $1, 'did:theprotocol:' || lpad(g::text, 36, '0'), (ARRAY['yes', 'no', 'abstain'])[1 + g % 3], 1, $2, $2
			FROM generate_series(1, $3::int) g WHERE g % 3 <> 0`, id, now, voters)
		require.NoError(b, err)
		clock.Advance(time.Hour)
		b.StartTimer()
		t1 := time.Now()
		p, err := s.TallyProposal(ctx, id)
		require.NoError(b, err)
		tally := time.Since(t1)
		b.StopTimer()
		require.Equal(b, voters, p.Voters)
		require.Equal(b, voters, p.Tally.Direct+p.Tally.Delegated, "every voter counted, a third through its delegate")
		require.Equal(b, voters/3, p.Tally.Delegated)
		b.ReportMetric(snapshot.Seconds(), "snapshot_s")
		b.ReportMetric(tally.Seconds(), "tally_s")
		b.ReportMetric(0, "ns/op")
	}
}

func pad(n int) string {
	s := "000000000000000000000000000000000000" + itoaT(int64(n))
	return s[len(s)-36:]
}
