package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// EnsureTopics creates topics that do not exist yet (4 partitions, the
// broker's default replication); existing ones are left alone. extra are
// the deployment's client options (TLS, SASL).
func EnsureTopics(ctx context.Context, brokers, topics []string, log *slog.Logger, extra ...kgo.Opt) error {
	if len(brokers) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, extra...)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	resp, err := adm.CreateTopics(cctx, 4, -1, nil, topics...)
	if err != nil {
		return fmt.Errorf("create kafka topics: %w", err)
	}
	for _, r := range resp.Sorted() {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", r.Topic, r.Err)
		}
		if r.Err == nil {
			log.Info("kafka topic created", "topic", r.Topic)
		}
	}
	return nil
}
