package ledgerstore

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore/internal/tegdb"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/xfer/xferstate"
)

// A peer's exposure on this TEG is what it credited here through
// transit:<peer>, net of what this TEG sent it (xferstate.Exposure). Each
// peer has a cap (Options.ExposureCaps). The commit is where transit
// moves, so the cap is binding there: a commit that would take the
// exposure past it is refused whole, in the transaction that would have
// credited. The prepare reserves: with the transit row locked, it admits a
// transfer only while the exposure, the source's open prepares and the
// transfer still fit, so in normal operation the refusal comes at prepare
// and the coordinator's saga aborts the transfer cleanly; a commit is
// refused only when the cap was lowered after the prepare (the saga then
// stays CommitStalled, visibly, until the cap or the exposure allows it).

// DefaultExposureCapUnits is the cap of every peer when Options.ExposureCaps
// is left empty: 1,000,000 AVT.
const DefaultExposureCapUnits int64 = 1_000_000 * 100_000_000

// maxExposureRows bounds the transit accounts the exposure gauges report.
const maxExposureRows = 10_000

// xferMetrics are the store's own cross-registry metrics (per store, so two
// TEGs in one process do not mix).
type xferMetrics struct {
	exposureRefused *prometheus.CounterVec
	exposure        *prometheus.Desc
	exposureCap     *prometheus.Desc
}

func newXferMetrics() *xferMetrics {
	return &xferMetrics{
		exposureRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xfer_exposure_refused_total",
			Help: "Cross-registry transfers from a peer refused because crediting them would take the peer's exposure beyond its cap (at prepare or at commit).",
		}, []string{"peer"}),
		exposure: prometheus.NewDesc("xfer_exposure_units",
			"What a peer has credited on this TEG through its transit account, net of what this TEG sent it (−balance of transit:<peer>), base units.",
			[]string{"peer"}, nil),
		exposureCap: prometheus.NewDesc("xfer_exposure_cap_units",
			"The exposure cap of a peer, base units.", []string{"peer"}, nil),
	}
}

// exposureCaps returns the caps with the default filled in.
func exposureCaps(c xferstate.Caps) xferstate.Caps {
	if c.Default == 0 && len(c.PerPeer) == 0 {
		c.Default = DefaultExposureCapUnits
	}
	return c
}

// ExposureCap returns the cap that applies to peer.
func (s *Store) ExposureCap(peer string) int64 { return s.caps.For(peer) }

// reserveExposure is the prepare-time rule, inside the transaction that
// records the prepares: it locks transit:<source>, then turns into
// rejections the prepares of p that would not fit under the cap with the
// open prepares already reserving. Prepares of p already recorded (a
// retried call) answer from their record and reserve nothing new. It
// returns how many it refused.
func (s *Store) reserveExposure(ctx context.Context, tx pgx.Tx, source string, p *tegdb.XferPreparesInsertParams) (int, error) {
	transit := TransitAccount(source)
	locked, err := s.lockBalances(ctx, tx, map[balKey]struct{}{{transit, ledger.BucketLiquid}: {}})
	if err != nil {
		return 0, err
	}
	tb := locked[balKey{transit, ledger.BucketLiquid}]
	if tb == nil {
		return 0, apperr.New(apperr.Internal, "transit account %s missing", transit)
	}
	recorded, err := s.q.XferPreparesGet(ctx, tx, p.Ids)
	if err != nil {
		return 0, err
	}
	skip := make(map[uuid.UUID]bool, len(recorded)+len(p.Ids))
	for _, r := range recorded {
		skip[r.TransferID] = true
	}
	open, err := s.q.XferPreparesOpenTotal(ctx, tx, source)
	if err != nil {
		return 0, err
	}
	var (
		idx     []int
		amounts []int64
	)
	for i, id := range p.Ids {
		if xferstate.Status(p.Statuses[i]) != xferstate.Prepared || skip[id] {
			continue
		}
		skip[id] = true // the insert keeps the first of a repeated ID
		idx = append(idx, i)
		amounts = append(amounts, p.Amounts[i])
	}
	if len(idx) == 0 {
		return 0, nil
	}
	limit := s.caps.For(source)
	admitted := xferstate.Reserve(xferstate.Headroom(tb.units, limit), open, amounts)
	refused := 0
	for k, i := range idx {
		if admitted[k] {
			continue
		}
		refused++
		p.Statuses[i] = string(xferstate.Rejected)
		p.Reasons[i] = xferstate.RefusalReason(source, p.Amounts[i], xferstate.Exposure(tb.units), open, limit)
		p.Fees[i], p.FeeBps[i] = 0, 0
	}
	return refused, nil
}

// exposureRefusal is the error of a commit refused by the cap: after is
// the transit balance the commit would have left.
func exposureRefusal(source string, n int, after, limit int64) error {
	return apperr.New(apperr.ExposureCapExceeded,
		"committing %d transfer(s) from %s would take its exposure to %d units, beyond its cap of %d; nothing was credited",
		n, source, xferstate.Exposure(after), limit)
}

// countExposureRefused records refused transfers of source.
func (s *Store) countExposureRefused(source string, n int) {
	if n > 0 {
		s.xm.exposureRefused.WithLabelValues(source).Add(float64(n))
	}
}

// XferCollector reports the store's cross-registry metrics: transfers
// refused by an exposure cap (xfer_exposure_refused_total{peer}) and, read
// from the database at each scrape, every peer's current exposure and cap
// (xfer_exposure_units{peer}, xfer_exposure_cap_units{peer}).
func (s *Store) XferCollector() prometheus.Collector { return xferCollector{s} }

type xferCollector struct{ s *Store }

func (c xferCollector) Describe(ch chan<- *prometheus.Desc) {
	c.s.xm.exposureRefused.Describe(ch)
	ch <- c.s.xm.exposure
	ch <- c.s.xm.exposureCap
}

func (c xferCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	s.xm.exposureRefused.Collect(ch)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	rows, err := s.q.XferTransitBalances(ctx, s.pool, maxExposureRows)
	if err != nil {
		// A failed read leaves the gauges out of this scrape rather than
		// failing the whole scrape.
		s.log.Warn("exposure gauges: read transit balances", "err", err)
		return
	}
	for _, r := range rows {
		peer, ok := strings.CutPrefix(r.AccountID, "transit:")
		if !ok || peer == "" {
			continue
		}
		// Prometheus samples are float64: this is the exported reading
		// only (exact up to 2^53 base units, ~90 million AVT). Every
		// decision about the cap is taken on the int64 units in the
		// commit's transaction, never on this value.
		ch <- prometheus.MustNewConstMetric(s.xm.exposure, prometheus.GaugeValue, float64(xferstate.Exposure(r.Units)), peer)
		ch <- prometheus.MustNewConstMetric(s.xm.exposureCap, prometheus.GaugeValue, float64(s.caps.For(peer)), peer)
	}
}
