package devstack

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// KafkaOptions configures the embedded broker.
type KafkaOptions struct {
	Host string // default 127.0.0.1
	Port int    // 0: the broker binds a port the kernel picks (no window for another to take it)
	// DataDir persists topics, offsets and producer IDs across restarts;
	// empty keeps everything in memory (tests that need a broker that
	// forgets).
	DataDir    string
	Topics     []string
	Partitions int32 // per topic, default 4
	Log        *slog.Logger
}

// Kafka is franz-go's kfake broker on a real TCP port: one broker, no
// replication, fine for development and tests, not a production broker.
type Kafka struct {
	cluster *kfake.Cluster
	addr    string
}

// StartKafka starts the broker with opts.Topics created.
func StartKafka(opts KafkaOptions) (*Kafka, error) {
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.Partitions <= 0 {
		opts.Partitions = 4
	}
	if err := portFree(opts.Host, opts.Port); err != nil {
		return nil, fmt.Errorf("kafka port: %w", err)
	}
	// The broker's listener is bound here, on port 0 when none is set: the
	// kernel assigns the port at bind, so unlike a port chosen first and
	// bound later it cannot be taken in between.
	var ln net.Listener
	kopts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(opts.Port),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			l, err := net.Listen(network, net.JoinHostPort(opts.Host, strconv.Itoa(opts.Port)))
			ln = l
			return l, err
		}),
	}
	if opts.DataDir != "" {
		kopts = append(kopts, kfake.DataDir(opts.DataDir), kfake.SyncWrites())
	}
	if len(opts.Topics) > 0 {
		kopts = append(kopts, kfake.SeedTopics(opts.Partitions, opts.Topics...))
	}
	c, err := kfake.NewCluster(kopts...)
	if err != nil {
		return nil, fmt.Errorf("start embedded kafka on %s:%d: %w", opts.Host, opts.Port, err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	k := &Kafka{cluster: c, addr: net.JoinHostPort(opts.Host, strconv.Itoa(port))}
	if opts.Log != nil {
		opts.Log.Info("embedded Kafka ready", "addr", k.addr, "data_dir", opts.DataDir, "topics", opts.Topics)
	}
	return k, nil
}

// Addr is the bootstrap broker address.
func (k *Kafka) Addr() string { return k.addr }

// Cluster exposes the kfake cluster for fault injection in tests.
func (k *Kafka) Cluster() *kfake.Cluster { return k.cluster }

// Stop closes the broker.
func (k *Kafka) Stop() {
	if k != nil && k.cluster != nil {
		k.cluster.Close()
	}
}

// PingKafka checks that brokers answer a metadata request.
func PingKafka(ctx context.Context, brokers []string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DialTimeout(time.Second))
	if err != nil {
		return err
	}
	defer cl.Close()
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return cl.Ping(cctx)
}
