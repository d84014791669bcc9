package ledgerstore_test

import (
	"testing"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/xfer/xferstate"
)

// metricValue reads one labelled counter or gauge from c (0 when absent).
func metricValue(t *testing.T, c prometheus.Collector, name, peer string) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "peer" && l.GetValue() == peer {
					if m.GetCounter() != nil {
						return m.GetCounter().GetValue()
					}
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return 0
}

// TestXferExposureCap drives a peer's exposure on a participant up to its
// cap: prepares reserve (open prepares count), a prepare that does not fit
// is rejected with the cap as its reason, a commit that would pass a cap
// lowered since the prepare is refused whole with nothing credited, and
// every refusal is counted per peer; the gauges report the exposure and
// the cap.
func TestXferExposureCap(t *testing.T) {
	t.Parallel()
	const peer = "alpha-op2"
	dst := newEnv(t, envOpts{notMainframe: true})
	open := func(limit int64) *ledgerstore.Store {
		return ledgerstore.New(dst.pool, ledgerstore.Options{
			Frame: "alpha", Registry: "alpha-op1", Now: dst.clock.Now,
			ExposureCaps: xferstate.Caps{Default: limit, PerPeer: map[string]int64{"alpha-closed": 0}},
		})
	}
	s := open(100 * avt)
	require.Equal(t, 100*avt, s.ExposureCap(peer))
	bob := agentID()
	_, _, err := s.OpenAccount(dst.ctx, bob, ledger.KindAgent)
	require.NoError(t, err)
	item := func(amount int64) ledgerstore.XferPrepareItem {
		return ledgerstore.XferPrepareItem{ID: uuid.New(), From: agentID(), To: bob, AmountUnits: amount}
	}
	prepare := func(s *ledgerstore.Store, items ...ledgerstore.XferPrepareItem) []ledgerstore.XferPrepareResult {
		t.Helper()
		rs, err := s.PrepareXfers(dst.ctx, peer, items)
		require.NoError(t, err)
		return rs
	}
	transit := func() int64 {
		units, _ := dst.balance(ledgerstore.TransitAccount(peer))
		return units
	}
	refused := func(s *ledgerstore.Store) float64 {
		return metricValue(t, s.XferCollector(), "xfer_exposure_refused_total", peer)
	}

	// 60 fits; 50 more does not (60 reserved).
	a, b := item(60*avt), item(50*avt)
	rs := prepare(s, a, b)
	require.Equal(t, xferstate.Prepared, rs[0].Status)
	require.Equal(t, xferstate.Rejected, rs[1].Status)
	require.Contains(t, rs[1].Reason, xferstate.ReasonExposureCap)
	require.Contains(t, rs[1].Reason, peer)
	require.Zero(t, rs[1].FeeUnits)
	require.Equal(t, 1.0, refused(s))
	// A retried call answers from the records: nothing new is reserved or
	// counted.
	again := prepare(s, a, b)
	require.Equal(t, rs, again)
	require.Equal(t, 1.0, refused(s))
	// 30 fits beside the 60 still open, then 11 does not (90 + 11 > 100);
	// the same ID twice in one call reserves once.
	c, d := item(30*avt), item(11*avt)
	rs = prepare(s, c, c, d)
	require.Equal(t, []xferstate.Status{xferstate.Prepared, xferstate.Prepared, xferstate.Rejected}, []xferstate.Status{rs[0].Status, rs[1].Status, rs[2].Status})
	require.Equal(t, 2.0, refused(s))

	// The commit of a reserved prepare passes.
	rs, err = s.CommitXfers(dst.ctx, peer, []ledgerstore.XferPrepareItem{a})
	require.NoError(t, err)
	require.Equal(t, xferstate.Committed, rs[0].Status)
	require.Equal(t, -60*avt, transit())
	require.Equal(t, float64(60*avt), metricValue(t, s.XferCollector(), "xfer_exposure_units", peer))
	require.Equal(t, float64(100*avt), metricValue(t, s.XferCollector(), "xfer_exposure_cap_units", peer))

	// The cap is lowered to 70 (a restart with another setting): the
	// commit of c (60 + 30) is refused whole, nothing moves, c stays open.
	low := open(70 * avt)
	snap := dst.snapshot()
	_, err = low.CommitXfers(dst.ctx, peer, []ledgerstore.XferPrepareItem{c, a})
	require.Equal(t, apperr.ExposureCapExceeded, apperr.CodeOf(err), "%v", err)
	require.Contains(t, apperr.MessageOf(err), "beyond its cap of 7000000000")
	require.Equal(t, snap, dst.snapshot())
	require.Equal(t, 1.0, refused(low), "the transfer it would have credited is counted, not a's replay")
	var st string
	require.NoError(t, dst.pool.QueryRow(dst.ctx, `SELECT status FROM xfer_prepares WHERE transfer_id = $1`, c.ID).Scan(&st))
	require.Equal(t, string(xferstate.Prepared), st)
	// While c reserves 30, nothing more fits (60 + 30 > 70).
	rs = prepare(low, item(5*avt))
	require.Equal(t, xferstate.Rejected, rs[0].Status)
	// Once c is aborted, 10 are free again.
	_, err = low.AbortXfers(dst.ctx, peer, []uuid.UUID{c.ID})
	require.NoError(t, err)
	e := item(10 * avt)
	rs = prepare(low, e)
	require.Equal(t, xferstate.Prepared, rs[0].Status)
	rs, err = low.CommitXfers(dst.ctx, peer, []ledgerstore.XferPrepareItem{e})
	require.NoError(t, err)
	require.Equal(t, xferstate.Committed, rs[0].Status)
	require.Equal(t, -70*avt, transit(), "exactly at the cap")

	// A peer whose cap is 0 credits nothing; another peer has its own room.
	rs, err = low.PrepareXfers(dst.ctx, "alpha-closed", []ledgerstore.XferPrepareItem{item(avt)})
	require.NoError(t, err)
	require.Equal(t, xferstate.Rejected, rs[0].Status)
	require.Equal(t, 1.0, metricValue(t, low.XferCollector(), "xfer_exposure_refused_total", "alpha-closed"))
	rs, err = low.PrepareXfers(dst.ctx, "alpha-op3", []ledgerstore.XferPrepareItem{item(70 * avt)})
	require.NoError(t, err)
	require.Equal(t, xferstate.Prepared, rs[0].Status)
	dst.xferInvariants()
}

// An empty cap setting is the default cap, not "no credit at all".
func TestXferExposureCapDefault(t *testing.T) {
	t.Parallel()
	dst := newEnv(t, envOpts{notMainframe: true})
	require.Equal(t, ledgerstore.DefaultExposureCapUnits, dst.store.ExposureCap("anyone"))
	require.Equal(t, int64(1_000_000)*avt, ledgerstore.DefaultExposureCapUnits)
}
