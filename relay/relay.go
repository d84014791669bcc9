// Package relay publishes a database's transactional outbox to the frame's
// Kafka topic. One relay runs per database (an advisory lock elects it): it
// assigns the gap-free per-source sequence numbers, publishes in bounded
// batches with franz-go's idempotent producer (record key = subject, so one
// agent's events stay ordered), and marks rows published only after the
// broker acknowledged them. While Kafka is down rows simply wait; when the
// EventStore's high-water mark for this source stalls behind what was
// published (Kafka lost records, e.g. a broker restarted empty), the missing
// range is re-published from the retained outbox rows.
//
// With a Signer, every record also carries the events.HeaderAuth header:
// the relay signs what it publishes in groups with its registry's key, so
// the EventStore accepts the records only as this registry's
// (docs/adr/0016).
package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/events"
)

// HeaderSourceSeq is the Kafka header carrying the sequence number (the
// EventStore reads the same name).
const HeaderSourceSeq = "source_seq"

// ProgressReader tells the relay how far the EventStore got for a source.
type ProgressReader interface {
	HighWaterMark(ctx context.Context, registry, source string) (int64, error)
}

// Options configure a relay.
type Options struct {
	Registry string
	Source   string // "teg", "registry", "eventstore"
	Topic    string
	// BatchSize bounds rows per publish, default 5000 (at 1,000 a relay kept
	// up with ~7,000 events/s only with seconds of lag).
	BatchSize int
	// Idle is the poll interval when the outbox is empty, default 20ms.
	Idle time.Duration
	// RepublishAfter is how long the EventStore's high-water mark may stay
	// behind the published sequence before the gap is re-published,
	// default 10s. Zero Progress disables re-publishing.
	RepublishAfter time.Duration
	Progress       ProgressReader
	// Retention keeps published rows (for re-publishing) this long, default
	// 7 days; only rows the EventStore acknowledged are ever deleted.
	Retention time.Duration
	Log       *slog.Logger
	Metrics   prometheus.Registerer
	Now       func() time.Time
	// Kafka are extra client options of the producer (TLS, SASL).
	Kafka []kgo.Opt
	// Signer signs the published records with the registry's event
	// signing key; nil publishes them unsigned (an EventStore that
	// authenticates sources quarantines them).
	Signer *events.Signer
}

// Relay publishes one database's outbox.
type Relay struct {
	out     *db.OutboxStore
	brokers []string
	kcl     *kgo.Client // nil until first use, and after a produce failure
	o       Options
	m       relayMetrics

	// caughtUp: every row numbered so far is published, the last being
	// publishedSeq (so the next pass publishes exactly what it numbers).
	caughtUp     bool
	publishedSeq int64

	// partitions is the topic's partition count, read when the producer
	// is created (0: unknown); signed groups follow partitions.
	partitions int

	ackedSeq     int64 // EventStore high-water mark last seen
	ackedMovedAt time.Time
	lastProgress time.Time
	lastRetain   time.Time
	lastLag      time.Time
}

type relayMetrics struct {
	published   prometheus.Counter
	republished prometheus.Counter
	errors      *prometheus.CounterVec
	lagRows     prometheus.Gauge
	lagSeconds  prometheus.Gauge
}

// New returns a relay publishing pool's outbox to brokers. Close it when
// done.
func New(pool *pgxpool.Pool, brokers []string, o Options) *Relay {
	if o.BatchSize <= 0 || o.BatchSize > 10_000 {
		o.BatchSize = 5000
	}
	if o.Idle <= 0 {
		o.Idle = 20 * time.Millisecond
	}
	if o.RepublishAfter <= 0 {
		o.RepublishAfter = 10 * time.Second
	}
	if o.Retention <= 0 {
		o.Retention = 7 * 24 * time.Hour
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	labels := prometheus.Labels{"registry": o.Registry, "source": o.Source}
	m := relayMetrics{
		published:   prometheus.NewCounter(prometheus.CounterOpts{Name: "outbox_published_total", Help: "Outbox rows acknowledged by Kafka.", ConstLabels: labels}),
		republished: prometheus.NewCounter(prometheus.CounterOpts{Name: "outbox_republished_total", Help: "Outbox rows re-published after the EventStore reported a gap.", ConstLabels: labels}),
		errors:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "outbox_relay_errors_total", Help: "Relay failures by stage.", ConstLabels: labels}, []string{"stage"}),
		lagRows:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "outbox_lag_rows", Help: "Outbox rows not yet published.", ConstLabels: labels}),
		lagSeconds:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "outbox_lag_seconds", Help: "Age of the oldest unpublished outbox row.", ConstLabels: labels}),
	}
	if o.Metrics != nil {
		o.Metrics.MustRegister(m.published, m.republished, m.errors, m.lagRows, m.lagSeconds)
	}
	return &Relay{out: db.NewOutboxStore(pool), brokers: brokers, o: o, m: m}
}

// Close releases the Kafka client.
func (r *Relay) Close() {
	if r.kcl != nil {
		r.kcl.Close()
		r.kcl = nil
	}
}

// NewProducer returns a franz-go client suited to the relay: idempotent
// (the default), all-ISR acks, bounded delivery time so a down broker
// surfaces as an error the relay backs off on instead of blocking forever.
func NewProducer(brokers []string, extra ...kgo.Opt) (*kgo.Client, error) {
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(2 * time.Millisecond),
		kgo.RecordDeliveryTimeout(10 * time.Second),
		kgo.ProducerBatchMaxBytes(4 << 20),
	}, extra...)
	return kgo.NewClient(opts...)
}

// standbyPoll is how often a standby relay (another process of the
// registry holds the lock) tries to take over: it bounds the pause in
// publishing after the active process dies, whose lock Postgres releases
// with its connection.
const standbyPoll = time.Second

// Run relays until ctx ends. Only the process holding the database's relay
// lock publishes; the others stand by and take over when it goes away.
func (r *Relay) Run(ctx context.Context) error {
	defer r.Close()
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		err := r.runLocked(ctx)
		if ctx.Err() != nil {
			return nil
		}
		wait := backoff
		switch {
		case errors.Is(err, db.ErrRelayLockHeld):
			// Normal with several processes per registry: not an error.
			wait, backoff = standbyPoll, 50*time.Millisecond
		case err != nil:
			r.o.Log.Warn("outbox relay error", "registry", r.o.Registry, "source", r.o.Source, "err", err, "backoff", backoff)
			backoff = min(backoff*2, 5*time.Second)
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	return nil
}

func (r *Relay) runLocked(ctx context.Context) error {
	return r.out.WithRelayLock(ctx, func() error {
		r.caughtUp = false // another relay may have published meanwhile
		for ctx.Err() == nil {
			n, err := r.Step(ctx)
			if err != nil {
				return err
			}
			if n == 0 {
				select {
				case <-ctx.Done():
				case <-time.After(r.o.Idle):
				}
			}
		}
		return nil
	})
}

// Step does one round: sequence new rows, publish one batch, and
// occasionally check the EventStore's progress (re-publishing a stalled
// gap) and apply retention. It returns how many rows it published.
func (r *Relay) Step(ctx context.Context) (int, error) {
	fresh, err := r.sequence(ctx)
	if err != nil {
		r.m.errors.WithLabelValues("sequence").Inc()
		return 0, err
	}
	n, err := r.publishPending(ctx, fresh)
	if err != nil {
		r.m.errors.WithLabelValues("publish").Inc()
		return 0, err
	}
	now := r.o.Now()
	if r.o.Progress != nil && now.Sub(r.lastProgress) >= time.Second {
		r.lastProgress = now
		if err := r.checkProgress(ctx, now); err != nil {
			r.m.errors.WithLabelValues("republish").Inc()
			r.o.Log.Warn("outbox relay: progress check", "err", err)
		}
	}
	if now.Sub(r.lastRetain) >= time.Minute {
		r.lastRetain = now
		if err := r.retain(ctx, now); err != nil {
			r.m.errors.WithLabelValues("retention").Inc()
			r.o.Log.Warn("outbox relay: retention", "err", err)
		}
	}
	// The lag gauges count unpublished rows: a scan, so at most once a
	// second (it was ~5% of the database's time under load).
	if now.Sub(r.lastLag) >= time.Second {
		r.lastLag = now
		if rows, oldest, err := r.out.Lag(ctx, now); err == nil {
			r.m.lagRows.Set(float64(rows))
			r.m.lagSeconds.Set(max(0, now.Sub(oldest).Seconds()))
		}
	}
	return n, nil
}

// sequence numbers the rows committed since the last pass (see
// db.OutboxStore.Sequence) and returns them, in sequence order, for
// publishPending.
func (r *Relay) sequence(ctx context.Context) ([]db.OutboxRow, error) {
	return r.out.Sequence(ctx, r.o.BatchSize, r.o.Now())
}

// publishPending publishes the next batch in sequence order. While the
// relay is caught up (everything it numbered before this pass is
// published) that batch is exactly the rows sequence just numbered, and
// they are published as they are; otherwise (at start, after a failure)
// the rows above the published mark are read back from the outbox.
func (r *Relay) publishPending(ctx context.Context, fresh []db.OutboxRow) (int, error) {
	var out []db.OutboxRow
	if r.caughtUp && (len(fresh) == 0 || fresh[0].Seq == r.publishedSeq+1) {
		if len(fresh) == 0 {
			return 0, nil
		}
		out = fresh
	} else {
		r.caughtUp = false
		rows, err := r.out.Unpublished(ctx, r.o.BatchSize)
		if err != nil {
			return 0, err
		}
		if len(rows) == 0 {
			// Everything numbered is published: from here on each pass
			// publishes what it numbers.
			if r.publishedSeq, err = r.out.PublishedSeq(ctx); err != nil {
				return 0, err
			}
			r.caughtUp = true
			return 0, nil
		}
		out = rows
	}
	acked, err := r.produce(ctx, out)
	// The mark moves over the acknowledged prefix of the batch (rows come
	// in sequence order, gap-free); anything after a failed record is
	// published again, and the EventStore deduplicates by idempotency key.
	n := ackedPrefix(out, acked)
	if n > 0 {
		if merr := r.out.MarkPublished(ctx, out[n-1].Seq); merr != nil {
			r.caughtUp = false
			return 0, merr
		}
		r.m.published.Add(float64(n))
	}
	switch {
	case err != nil || n < len(out):
		r.caughtUp = false
	case r.caughtUp || len(out) < r.o.BatchSize:
		// Either the fresh rows were all that was unpublished, or the
		// read-back returned less than a full batch: all of it is out.
		r.publishedSeq, r.caughtUp = out[n-1].Seq, true
	}
	return n, err
}

// ackedPrefix is how many leading rows (in order) the broker acknowledged.
func ackedPrefix(rows []db.OutboxRow, acked []int64) int {
	ok := make(map[int64]bool, len(acked))
	for _, s := range acked {
		ok[s] = true
	}
	n := 0
	for n < len(rows) && ok[rows[n].Seq] {
		n++
	}
	return n
}

// produce sends rows and returns the sequence numbers the broker
// acknowledged; err reports the first failure.
func (r *Relay) produce(ctx context.Context, rows []db.OutboxRow) ([]int64, error) {
	if r.kcl == nil {
		kcl, err := NewProducer(r.brokers, r.o.Kafka...)
		if err != nil {
			return nil, err
		}
		r.kcl = kcl
		r.partitions = r.topicPartitions(ctx)
	}
	auth, err := r.sign(rows)
	if err != nil {
		return nil, err
	}
	recs := make([]*kgo.Record, len(rows))
	for i, row := range rows {
		recs[i] = &kgo.Record{
			Topic:   r.o.Topic,
			Key:     []byte(row.Subject),
			Value:   row.Envelope,
			Headers: []kgo.RecordHeader{{Key: HeaderSourceSeq, Value: []byte(strconv.FormatInt(row.Seq, 10))}},
		}
		if auth != nil {
			recs[i].Headers = append(recs[i].Headers, kgo.RecordHeader{Key: events.HeaderAuth, Value: auth[i]})
		}
	}
	results := r.kcl.ProduceSync(ctx, recs...)
	acked := make([]int64, 0, len(rows))
	var firstErr error
	for i, res := range results {
		if res.Err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("produce seq %d: %w", rows[i].Seq, res.Err)
			}
			continue
		}
		acked = append(acked, rows[i].Seq)
	}
	if firstErr != nil {
		// A fresh client after any failure: a broker that came back empty
		// knows neither our producer ID nor the topic IDs the old client
		// cached, and the old client would keep failing on them.
		r.Close()
	}
	return acked, firstErr
}

// sign returns each row's events.HeaderAuth value (nil without a
// Signer). Rows are signed in groups of consecutive sequence numbers of
// one partition, as they are published (re-published ones again): a
// group then reaches the EventStore in one partition's stretch of the
// log, where it usually has every record of the group at once and checks
// them from their leaves. Any other arrival is checked through each
// record's own path, only slower.
func (r *Relay) sign(rows []db.OutboxRow) ([][]byte, error) {
	if r.o.Signer == nil {
		return nil, nil
	}
	byPartition := make([][]int, max(r.partitions, 1))
	for i, row := range rows {
		p := 0
		if r.partitions > 1 {
			p = PartitionOf(row.Subject, r.partitions)
		}
		byPartition[p] = append(byPartition[p], i)
	}
	out := make([][]byte, len(rows))
	for _, idx := range byPartition {
		if len(idx) == 0 {
			continue
		}
		seqs := make([]int64, len(idx))
		envs := make([][]byte, len(idx))
		for j, i := range idx {
			seqs[j], envs[j] = rows[i].Seq, rows[i].Envelope
		}
		hdrs, err := r.o.Signer.Sign(r.o.Registry, r.o.Source, seqs, envs)
		if err != nil {
			return nil, err
		}
		for j, i := range idx {
			out[i] = hdrs[j]
		}
	}
	return out, nil
}

// keyPartitioner places keyed records as the producer's default
// partitioner does (Kafka's murmur2 of the key).
var keyPartitioner = kgo.StickyKeyPartitioner(nil).ForTopic("")

// PartitionOf is the partition of n a record keyed key goes to.
func PartitionOf(key string, n int) int {
	return keyPartitioner.Partition(&kgo.Record{Key: []byte(key)}, n)
}

// topicPartitions reads the topic's partition count, 0 when it cannot.
func (r *Relay) topicPartitions(ctx context.Context) int {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	topics, err := kadm.NewClient(r.kcl).ListTopics(ctx, r.o.Topic)
	if err != nil {
		return 0
	}
	td, ok := topics[r.o.Topic]
	if !ok || td.Err != nil {
		return 0
	}
	return len(td.Partitions)
}

// checkProgress re-publishes when the EventStore's high-water mark has not
// moved for RepublishAfter while rows beyond it were published.
func (r *Relay) checkProgress(ctx context.Context, now time.Time) error {
	hwm, err := r.o.Progress.HighWaterMark(ctx, r.o.Registry, r.o.Source)
	if err != nil {
		return err
	}
	if hwm != r.ackedSeq || r.ackedMovedAt.IsZero() {
		r.ackedSeq, r.ackedMovedAt = hwm, now
		return nil
	}
	maxPub, err := r.out.PublishedSeq(ctx)
	if err != nil {
		return err
	}
	if maxPub <= hwm || now.Sub(r.ackedMovedAt) < r.o.RepublishAfter {
		return nil
	}
	out, err := r.out.Range(ctx, hwm+1, maxPub, r.o.BatchSize)
	if err != nil || len(out) == 0 {
		return err
	}
	acked, err := r.produce(ctx, out)
	r.m.republished.Add(float64(len(acked)))
	r.o.Log.Warn("outbox relay: re-published a gap the EventStore reported", "registry", r.o.Registry, "source", r.o.Source,
		"from", hwm+1, "to", out[len(out)-1].Seq, "rows", len(acked))
	// Give the EventStore another full window before re-publishing again.
	r.ackedMovedAt = now
	return err
}

func (r *Relay) retain(ctx context.Context, now time.Time) error {
	if r.o.Progress == nil {
		return nil // without acknowledgements nothing is provably safe to delete
	}
	_, err := r.out.DeletePublishedBefore(ctx, now.Add(-r.o.Retention), r.ackedSeq, 10_000)
	return err
}

// HTTPProgress reads a source's high-water mark from the frame EventStore's
// public endpoint GET /api/v1/projections/sources (for relays on nodes that
// do not host the EventStore).
type HTTPProgress struct {
	BaseURL string
	Client  *http.Client
}

// HighWaterMark implements ProgressReader.
func (h HTTPProgress) HighWaterMark(ctx context.Context, registry, source string) (int64, error) {
	c := h.Client
	if c == nil {
		c = &http.Client{Timeout: 5 * time.Second}
	}
	u := h.BaseURL + "/api/v1/projections/sources?registry=" + url.QueryEscape(registry) + "&source=" + url.QueryEscape(source)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	var body struct {
		Sources []struct {
			Registry string `json:"registry"`
			Source   string `json:"source"`
			HWM      int64  `json:"hwm"`
		} `json:"sources"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
		return 0, fmt.Errorf("decode progress: %w", err)
	}
	for _, s := range body.Sources {
		if s.Registry == registry && s.Source == source {
			return s.HWM, nil
		}
	}
	return 0, nil
}
