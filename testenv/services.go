package testenv

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/theprotocol-dev/theprotocol/devstack"
)

// TestNamespace is the Temporal namespace tests run in; isolation comes
// from a unique task queue per test.
const TestNamespace = "default"

var (
	temporalOnce sync.Once
	temporalAddr string
	temporalErr  error
)

// TemporalAddr returns the shared dev server's address, starting a private
// in-memory one when EnvTemporalAddr is unset.
func TemporalAddr(t testing.TB) string {
	t.Helper()
	SkipWithoutServices(t)
	temporalOnce.Do(func() {
		if a := os.Getenv(EnvTemporalAddr); a != "" {
			temporalAddr = a
			return
		}
		var stop func()
		temporalAddr, stop, temporalErr = StartTemporal(context.Background(), nil)
		if temporalErr == nil {
			onExit(stop)
		}
	})
	if temporalErr != nil {
		t.Fatalf("testenv: temporal: %v", temporalErr)
	}
	return temporalAddr
}

// StartTemporal starts a headless in-memory dev server on free ports
// (chosen by devstack, which chooses again should one be taken before the
// server binds it).
func StartTemporal(ctx context.Context, log *slog.Logger) (addr string, stop func(), err error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", nil, err
	}
	bin := os.Getenv("THEPROTOCOL_TEMPORAL_BIN")
	if bin == "" {
		bin = filepath.Join(root, "bin", "temporal")
	}
	tmp, err := devstack.StartTemporal(ctx, devstack.TemporalOptions{
		Bin: bin, Log: log,
		LogFile: filepath.Join(os.TempDir(), fmt.Sprintf("theprotocol-test-temporal-%d.log", os.Getpid())),
	})
	if err != nil {
		return "", nil, err
	}
	return tmp.Addr(), func() { _ = tmp.Stop() }, nil
}

// Temporal is a client on the test namespace and a task queue unique to the
// test.
type Temporal struct {
	Client    client.Client
	Namespace string
	TaskQueue string
	Addr      string
}

// NewTemporal dials the dev server; the client is closed when the test ends.
func NewTemporal(t testing.TB) Temporal {
	t.Helper()
	addr := TemporalAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.DialContext(ctx, client.Options{HostPort: addr, Namespace: TestNamespace, Logger: sdkLogger})
	if err != nil {
		t.Fatalf("testenv: dial temporal %s: %v", addr, err)
	}
	t.Cleanup(c.Close)
	tq := "test-" + strings.NewReplacer("/", "-", " ", "_").Replace(t.Name()) + "-" + randomHex(4)
	return Temporal{Client: c, Namespace: TestNamespace, TaskQueue: tq, Addr: addr}
}

var (
	kafkaOnce    sync.Once
	kafkaBrokers []string
	kafkaErr     error
)

// KafkaBrokers returns the shared broker list, starting an in-process
// embedded broker when EnvKafkaBrokers is unset. Tests must use topics of
// their own (see NewKafka for a broker a test may break).
func KafkaBrokers(t testing.TB) []string {
	t.Helper()
	SkipWithoutServices(t)
	kafkaOnce.Do(func() {
		if b := os.Getenv(EnvKafkaBrokers); b != "" {
			kafkaBrokers = strings.Split(b, ",")
			return
		}
		k, err := devstack.StartKafka(devstack.KafkaOptions{})
		if err != nil {
			kafkaErr = err
			return
		}
		onExit(k.Stop)
		kafkaBrokers = []string{k.Addr()}
	})
	if kafkaErr != nil {
		t.Fatalf("testenv: kafka: %v", kafkaErr)
	}
	return kafkaBrokers
}

// NewKafka starts a private in-memory broker for one test (for fault tests
// that stop or restart it) with topics created; it is closed at cleanup.
func NewKafka(t testing.TB, topics ...string) *devstack.Kafka {
	t.Helper()
	SkipWithoutServices(t)
	k, err := devstack.StartKafka(devstack.KafkaOptions{Topics: topics})
	if err != nil {
		t.Fatalf("testenv: kafka: %v", err)
	}
	t.Cleanup(k.Stop)
	return k
}

// sdkLogger keeps the SDK's warnings and errors (on stderr, safe after a
// test ends, unlike t.Log) and drops its chatty info/debug lines.
var sdkLogger = tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
