package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/events"
	"github.com/theprotocol-dev/theprotocol/ingest/internal/eventdb"
)

// Reactor reacts to event types from the frame's topic (SPEC §5). Handle
// must be idempotent in effect; the runner also deduplicates by event
// idempotency key (per registry) in reactor_processed, so each event is
// handled once per reactor even across redeliveries. Reactors read the
// topic as it is, without the EventStore's source authentication: an
// envelope may be forged, so a reactor treats it as a prompt to read
// authenticated state (the supply reactor reads the audit), never as a
// fact. Side effects are commands (alerts,
// workflow signals), never new events of the types the reactor consumes.
type Reactor struct {
	Name   string
	Types  []string
	Handle func(ctx context.Context, env events.Envelope) error
}

// RunReactor consumes topic with its own consumer group
// ("reactor-<name>-<frame>") until ctx ends; kafka are extra client
// options (TLS, SASL).
func RunReactor(ctx context.Context, r Reactor, pool *pgxpool.Pool, frame string, brokers []string, topic string, log *slog.Logger, kafka ...kgo.Opt) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	q := eventdb.New()
	store := db.NewStore(pool, "reactor-"+r.Name)
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := func() error {
			cl, err := newKafkaClient(kafka, kgo.SeedBrokers(brokers...), kgo.ConsumerGroup("reactor-"+r.Name+"-"+frame),
				kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
				kgo.FetchMaxWait(100*time.Millisecond))
			if err != nil {
				return err
			}
			defer cl.Close()
			for ctx.Err() == nil {
				fetches := cl.PollRecords(ctx, 1000)
				if ctx.Err() != nil {
					return nil
				}
				var ferr error
				fetches.EachError(func(t string, p int32, err error) { ferr = fmt.Errorf("fetch %s/%d: %w", t, p, err) })
				recs := fetches.Records()
				for _, rec := range recs {
					var env events.Envelope
					// Registry IDs never contain "/", so "<registry>/<key>"
					// names one registry's key: as in the event log, no
					// registry can take another's.
					if json.Unmarshal(rec.Value, &env) != nil || !slices.Contains(r.Types, env.Type) || strings.Contains(env.Registry, "/") {
						continue
					}
					if err := handleOnce(ctx, store, q, r, env); err != nil {
						return err
					}
				}
				if len(recs) > 0 {
					if err := cl.CommitRecords(ctx, recs...); err != nil {
						return err
					}
				} else if ferr != nil {
					return ferr
				}
			}
			return nil
		}()
		if err != nil && ctx.Err() == nil {
			log.Warn("reactor restarting", "reactor", r.Name, "err", err, "backoff", backoff)
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 5*time.Second)
		}
	}
	return nil
}

// handleOnce marks env processed by r and handles it in one transaction,
// so the mark commits only with a handled event. A process that dies while
// handling leaves no mark (its transaction rolls back with its
// connection): the record, redelivered to another member of the group, is
// handled there. A concurrent duplicate (two members during a rebalance)
// waits on the mark's key and then skips it. A handler that fails rolls
// the mark back, so a redelivery retries the side effect. Handlers are
// idempotent in effect: one that succeeded just before its process died
// is run again, which must be harmless.
func handleOnce(ctx context.Context, store *db.Store, q *eventdb.Queries, r Reactor, env events.Envelope) error {
	// Registry IDs never contain "/", so "<registry>/<key>" names one
	// registry's key: as in the event log, no registry can take another's.
	key := env.Registry + "/" + env.IdempotencyKey
	return store.Tx(ctx, func(tx pgx.Tx) error {
		_, err := q.ReactorMarkProcessed(ctx, tx, eventdb.ReactorMarkProcessedParams{Reactor: r.Name, IdempotencyKey: key, Now: time.Now()})
		if db.IsNotFound(err) {
			return nil // handled before
		}
		if err != nil {
			return err
		}
		if err := r.Handle(ctx, env); err != nil {
			return fmt.Errorf("reactor %s on %s: %w", r.Name, key, err)
		}
		return nil
	})
}

// SupplyInvariantReactor is NewSupplyWatch(…).Reactor(): a watch of its
// own (use one SupplyWatch when the reconciler must raise the same gauge).
func SupplyInvariantReactor(pool *pgxpool.Pool, frame string, reg prometheus.Registerer, log *slog.Logger) Reactor {
	return NewSupplyWatch(pool, frame, reg, log).Reactor()
}
