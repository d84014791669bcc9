package node_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/config"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/node"
)

// envCoordinatorChild carries a coordinatorSpec to the child process that
// TestXferCoordinatorProcess turns into a source node.
const envCoordinatorChild = "THEPROTOCOL_TEST_XFER_COORDINATOR"

const (
	childReady   = "COORDINATOR-READY"
	childCrashAt = "COORDINATOR-AT-CRASH-POINT"
)

// coordinatorSpec is what the child needs to start the source node (the
// node's Options hold functions and cannot travel as JSON).
type coordinatorSpec struct {
	Frame            config.Frame
	Registry         config.Registry
	PostgresAdminURL string
	TemporalAddr     string
	KafkaBrokers     []string
	DataDir          string
	EventStoreURL    string
	// CrashAt is the participant call ("prepare/after": the target
	// applied it, the reply is not yet back) at which the child stops
	// and announces childCrashAt; the parent then kills it.
	CrashAt string
}

// TestXferCoordinatorProcess is not a test of its own: it is the source
// node of TestCrossRegistrySettlementSurvivesCoordinatorSIGKILL, run in a
// child process (the test binary re-executed) so that it can be killed for
// real. It skips unless that test started it.
func TestXferCoordinatorProcess(t *testing.T) {
	raw := os.Getenv(envCoordinatorChild)
	if raw == "" {
		t.Skip("the source node of TestCrossRegistrySettlementSurvivesCoordinatorSIGKILL; runs only as its child process")
	}
	var spec coordinatorSpec
	require.NoError(t, json.Unmarshal([]byte(raw), &spec))
	n, err := node.Start(context.Background(), node.Options{
		Frame: spec.Frame, Registry: spec.Registry, PostgresAdminURL: spec.PostgresAdminURL,
		TemporalAddr: spec.TemporalAddr, KafkaBrokers: spec.KafkaBrokers,
		DataDir: spec.DataDir, EventStoreURL: spec.EventStoreURL, WriteAdminCredentials: true, Log: quietLog,
	})
	require.NoError(t, err)
	n.Xfer.Client.Fault = func(op, _ string, after bool) error {
		if after {
			op += "/after"
		}
		if op == spec.CrashAt {
			fmt.Println(childCrashAt)
			select {} // mid-activity, until the parent kills the process
		}
		return nil
	}
	fmt.Println(childReady)
	select {}
}

// coordinator is the source node running in a child process.
type coordinator struct {
	cmd   *exec.Cmd
	lines chan string
}

// startCoordinator starts the source node in a child process that stops
// at crashAt, and waits until it serves.
func (p *xferPair) startCoordinator(crashAt string) *coordinator {
	t := p.t
	raw, err := json.Marshal(coordinatorSpec{
		Frame: p.srcOpts.Frame, Registry: p.srcOpts.Registry, PostgresAdminURL: p.srcOpts.PostgresAdminURL,
		TemporalAddr: p.srcOpts.TemporalAddr, KafkaBrokers: p.srcOpts.KafkaBrokers, DataDir: p.srcOpts.DataDir,
		EventStoreURL: p.srcOpts.EventStoreURL, CrashAt: crashAt,
	})
	require.NoError(t, err)
	// A bounded -test.timeout: a child the parent failed to kill ends itself.
	cmd := exec.Command(os.Args[0], "-test.run=^TestXferCoordinatorProcess$", "-test.count=1", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), envCoordinatorChild+"="+string(raw))
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	c := &coordinator{cmd: cmd, lines: make(chan string, 64)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
	}()
	t.Cleanup(func() { c.kill(t) })
	if !c.await(childReady, 2*time.Minute) {
		c.kill(t)
		t.Fatalf("the coordinator process did not start\n%s", stderr.String())
	}
	return c
}

// await reports whether the child printed line within d.
func (c *coordinator) await(line string, d time.Duration) bool {
	deadline := time.After(d)
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				return false
			}
			if l == line {
				return true
			}
		case <-deadline:
			return false
		}
	}
}

// kill sends SIGKILL: no deferred cleanup, no graceful stop, the activity
// it was in the middle of simply ends.
func (c *coordinator) kill(t *testing.T) {
	if c.cmd.ProcessState != nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	err := c.cmd.Wait()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok {
			require.Equal(t, syscall.SIGKILL, ws.Signal(), "the coordinator died of SIGKILL")
		}
	}
}

// freePorts returns n ports free on loopback right now.
func freePorts(t *testing.T, n int) []int {
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
		defer ln.Close()
	}
	return ports
}

// TestCrossRegistrySettlementSurvivesCoordinatorSIGKILL runs the source
// node (registry, TEG, settlement worker; the frame's EventStore is on the
// target) in a child process and kills it with SIGKILL in the middle of a
// settlement activity: first after the target prepared (the reply never
// recorded), then, in a second process, after the target committed. The saga resumes on the next
// worker. Every transfer ends fully applied (credited once on the target,
// debited once from the sender) or fully refunded (hold voided, nothing
// credited), the one whose commit was cut ends committed, and both TEGs
// and the EventStore reconcile.
func TestCrossRegistrySettlementSurvivesCoordinatorSIGKILL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// Fixed ports: the source keeps its addresses across processes, as a
	// restarted deployment does (the target's relay and peer entry
	// point at them; the topology peers the two TEGs).
	p := newXferPair(t, freePorts(t, 3))
	// The frame's EventStore lives on the target: what is killed is the
	// coordinator (registry, TEG, settlement worker), not the consumer
	// of the frame's events, whose Kafka group would otherwise wait out
	// the dead processes' sessions before anything is ingested again.
	p.srcReg.Roles = []string{"registry", "teg", "worker"}
	p.dstReg.Roles = []string{"registry", "teg", "eventstore", "worker"}
	p.frame.Registries = []config.Registry{p.srcReg, p.dstReg}
	p.srcOpts.Frame, p.srcOpts.Registry = p.frame, p.srcReg
	p.dstOpts.Frame, p.dstOpts.Registry = p.frame, p.dstReg
	p.startDst()
	p.srcOpts.EventStoreURL = p.dst.URL()
	srcURL := fmt.Sprintf("http://127.0.0.1:%d", p.srcReg.APIPort)
	p.c = httpClient{t, srcURL}

	first := p.startCoordinator("prepare/after")
	p.setUpAccounts()
	available := func() int64 {
		var bal struct {
			AvailableUnits int64 `json:"available_units"`
		}
		require.Equal(t, 200, p.c.call("GET", "/api/v1/agents/"+p.alice+"/balance", p.aliceTok, nil, &bal))
		return bal.AvailableUnits
	}
	start := available()

	x1 := p.send(p.bob, 3*avt)
	require.True(t, first.await(childCrashAt, time.Minute), "the first coordinator reached the prepare reply")
	first.kill(t)

	// The second process resumes x1's saga; it is killed once a commit
	// reached the target. If x1 was aborted instead (its prepare window
	// ran out while no worker lived), a new transfer gets there.
	second := p.startCoordinator("commit/after")
	sent := []xferDTO{x1}
	var cutCommit xferDTO
	for deadline := time.Now().Add(3 * time.Minute); cutCommit.ID == uuid.Nil; {
		require.True(t, time.Now().Before(deadline), "the second coordinator never reached a commit reply")
		if second.await(childCrashAt, 200*time.Millisecond) {
			cutCommit = sent[len(sent)-1]
			break
		}
		var x xferDTO
		require.Equal(t, 200, p.c.call("GET", "/api/v1/transfers/"+x1.ID.String(), p.aliceTok, nil, &x))
		if x.Status == "aborted" && len(sent) == 1 {
			sent = append(sent, p.send(p.bob, 4*avt))
		}
	}
	second.kill(t)

	// The source comes back in this process; the sagas finish on it.
	var err error
	p.src, err = node.Start(ctx, p.srcOpts)
	require.NoError(t, err)
	t.Cleanup(func() { p.src.Stop(context.Background()) })
	require.Equal(t, srcURL, p.src.URL())
	p.src.Xfer.Client.Fault = p.fault

	committed, fees := int64(0), int64(0)
	for _, x := range sent {
		var done xferDTO
		require.Eventually(t, func() bool {
			require.Equal(t, 200, p.c.call("GET", "/api/v1/transfers/"+x.ID.String(), p.aliceTok, nil, &done))
			return done.Status == "committed" || done.Status == "aborted"
		}, 2*time.Minute, 100*time.Millisecond, "transfer %s ends committed or aborted", x.ID)
		var credits int
		require.NoError(t, p.dst.Pools[db.RoleTEG].QueryRow(ctx, `SELECT count(*) FROM transfers WHERE client_key = $1`, "#xfer:"+x.ID.String()).Scan(&credits))
		_, hold := p.senderView(done)
		if done.Status == "committed" {
			require.Equal(t, 1, credits, "credited exactly once")
			require.Equal(t, "posted", hold)
			committed += done.FeeUnits + done.NetUnits
			fees += done.FeeUnits
		} else {
			require.NotEqual(t, cutCommit.ID, x.ID, "a transfer whose commit reached the target is never aborted")
			require.Zero(t, credits, "an aborted transfer credits nothing")
			require.Equal(t, "voided", hold, "an aborted transfer's hold is released")
		}
		t.Logf("transfer %s: %s", x.ID, done.Status)
	}
	require.Positive(t, committed, "the transfer whose commit was cut is committed")

	units, held := balance(t, p.src, p.alice)
	require.Equal(t, start-committed, units)
	require.Zero(t, held)
	require.Equal(t, start-committed, available())
	bob, _ := balance(t, p.dst, p.bob)
	require.Equal(t, committed-fees, bob)
	out, _ := balance(t, p.src, ledgerstore.TransitAccount(p.dstReg.ID))
	in, _ := balance(t, p.dst, ledgerstore.TransitAccount(p.srcReg.ID))
	require.Equal(t, committed, out)
	require.Equal(t, -committed, in)
	p.checkEventStore()
}
