package devstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/testenv/logbuf"
)

func bufferLog() (*slog.Logger, *logbuf.Buffer) {
	buf := &logbuf.Buffer{}
	return slog.New(slog.NewTextHandler(buf, nil)), buf
}

func TestRetryOnTakenPort(t *testing.T) {
	taken := fmt.Errorf("start: %w", errPortInUse)
	cases := []struct {
		name     string
		chosen   bool
		results  []error // what start returns on each attempt; the last one repeats
		attempts int
		wantErr  error
		warnings int
	}{
		{"first start binds", true, []error{nil}, 1, nil, 0},
		{"taken twice, then bound", true, []error{taken, taken, nil}, 3, nil, 2},
		{"always taken: bounded", true, []error{taken}, maxPortAttempts, errPortInUse, maxPortAttempts - 1},
		{"another failure is not retried", true, []error{errors.New("initdb failed")}, 1, nil, 0},
		{"ports set by the caller are not replaced", false, []error{taken}, 1, errPortInUse, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			log, buf := bufferLog()
			n := 0
			err := retryOnTakenPort(log, "svc", tc.chosen, func(attempt int) error {
				n++
				require.Equal(t, n, attempt)
				return tc.results[min(attempt, len(tc.results))-1]
			})
			require.Equal(t, tc.attempts, n)
			switch last := tc.results[min(n, len(tc.results))-1]; {
			case last == nil:
				require.NoError(t, err)
			case tc.wantErr != nil:
				require.ErrorIs(t, err, tc.wantErr)
			default:
				require.ErrorIs(t, err, last)
			}
			require.Equal(t, tc.warnings, strings.Count(buf.String(), "starting again on another"), buf.String())
		})
	}
}

func TestBindFailed(t *testing.T) {
	require.True(t, bindFailed(`level=ERROR msg="can't set frontend port 51505: listen tcp 127.0.0.1:51505: bind: address already in use"`))
	require.True(t, bindFailed(`LOG:  could not bind IPv4 address "127.0.0.1": Address already in use`))
	require.False(t, bindFailed(`FATAL:  data directory "/x" has invalid permissions`))
}

// occupy listens on a free port for the rest of the test and makes
// pickPort hand out that port first, as if something had taken it between
// choosing and binding; it returns the port and the number of picks.
func occupy(t *testing.T) (int, func() int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	held := ln.Addr().(*net.TCPAddr).Port
	var mu sync.Mutex
	picks := 0
	prev := pickPort
	pickPort = func(host string) (int, error) {
		mu.Lock()
		picks++
		first := picks == 1
		mu.Unlock()
		if first {
			return held, nil
		}
		return FreePort(host)
	}
	t.Cleanup(func() { pickPort = prev })
	return held, func() int { mu.Lock(); defer mu.Unlock(); return picks }
}

func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	n, err := strconv.Atoi(p)
	require.NoError(t, err)
	return n
}

func TestPostgresStartsAgainWhenItsChosenPortIsTaken(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL cluster")
	}
	if _, err := FindPostgresBin(false, nil); err != nil {
		t.Skipf("no PostgreSQL server binaries: %v", err)
	}
	held, picks := occupy(t)
	log, buf := bufferLog()
	dir, err := os.MkdirTemp("", "theprotocol-devstack-pg-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	pg, err := StartPostgres(context.Background(), PostgresOptions{Dir: filepath.Join(dir, "data"), Log: log})
	if err != nil {
		raw, _ := os.ReadFile(filepath.Join(dir, "data.log"))
		t.Fatalf("%v\n%s\nserver log:\n%s", err, buf.String(), raw)
	}
	t.Cleanup(func() { _ = pg.Stop() })

	require.NotEqual(t, held, portOf(t, pg.Addr()), "the cluster runs on another port than the taken one")
	require.Equal(t, 2, picks(), "one start on the taken port, one on a new one")
	require.Contains(t, buf.String(), "service=postgres")
	require.Contains(t, buf.String(), "address already in use")
	require.Contains(t, buf.String(), "PostgreSQL ready")
}

func TestTemporalStartsAgainWhenItsChosenPortIsTaken(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Temporal dev server")
	}
	bin := os.Getenv("THEPROTOCOL_TEMPORAL_BIN")
	if bin == "" {
		bin = filepath.Join("..", "bin", "temporal")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("no temporal CLI at %s (make tools, or set THEPROTOCOL_TEMPORAL_BIN)", bin)
	}
	held, picks := occupy(t)
	log, buf := bufferLog()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tmp, err := StartTemporal(ctx, TemporalOptions{Bin: bin, Log: log, LogFile: filepath.Join(t.TempDir(), "temporal.log")})
	require.NoError(t, err, buf.String())
	t.Cleanup(func() { _ = tmp.Stop() })

	require.NotEqual(t, held, portOf(t, tmp.Addr()))
	require.Equal(t, 4, picks(), "gRPC and HTTP ports for each of the two starts")
	require.Contains(t, buf.String(), "service=temporal")
	require.Contains(t, buf.String(), "address already in use")
	require.NoError(t, PingTemporal(ctx, tmp.Addr(), nil))
}

func TestKafkaBindsAPortOfItsOwn(t *testing.T) {
	// Nothing to retry: with no port set the broker binds port 0 itself.
	k, err := StartKafka(KafkaOptions{})
	require.NoError(t, err)
	defer k.Stop()
	require.NotZero(t, portOf(t, k.Addr()))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, PingKafka(ctx, []string{k.Addr()}))

	// A port set by the caller that is taken is reported, not replaced.
	_, err = StartKafka(KafkaOptions{Port: portOf(t, k.Addr())})
	require.ErrorContains(t, err, "in use")
}
