package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/theprotocol-dev/theprotocol/config"
	"github.com/theprotocol-dev/theprotocol/devstack"
	"github.com/theprotocol-dev/theprotocol/identity"
	"github.com/theprotocol-dev/theprotocol/node"
	"github.com/theprotocol-dev/theprotocol/testenv"
	"github.com/theprotocol-dev/theprotocol/worker"
	"github.com/theprotocol-dev/theprotocol/workflows"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func envInt(key string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(key)); err == nil && v > 0 {
		return v
	}
	return def
}

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

type readyBody struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
	Error  *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func getReady(t *testing.T, url string) (int, readyBody) {
	t.Helper()
	resp, err := http.Get(url + "/readyz")
	require.NoError(t, err)
	defer resp.Body.Close()
	var b readyBody
	raw, _ := io.ReadAll(resp.Body)
	require.NoError(t, json.Unmarshal(raw, &b), string(raw))
	return resp.StatusCode, b
}

func testRegistry(t *testing.T) (config.Frame, config.Registry) {
	return testRegistryID(fmt.Sprintf("t%d", time.Now().UnixNano()%1_000_000_000))
}

// testRegistryID is a one-registry mainframe topology named id, on the test
// Temporal namespace and OS-chosen ports.
func testRegistryID(id string) (config.Frame, config.Registry) {
	reg := config.Registry{ID: id, Mainframe: true, Roles: []string{"registry", "teg", "eventstore", "worker"}, Namespace: testenv.TestNamespace}
	frame := config.Frame{ID: "f" + id, TrustDomain: "f.theprotocol.test", Currency: "AVT", Genesis: true, Registries: []config.Registry{reg}}
	return frame, reg
}

// /readyz names Postgres when its cluster is stopped and recovers when the
// cluster is back — on a cluster of the test's own, so stopping it harms no
// other test.
func TestReadyzReportsPostgresOutageAndRecovery(t *testing.T) {
	testenv.SkipWithoutServices(t)
	t.Parallel()
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "theprotocol-readyz-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	port, err := devstack.FreePort("127.0.0.1")
	require.NoError(t, err)
	pgOpts := devstack.PostgresOptions{Dir: filepath.Join(dir, "pg"), Port: port, Install: true}
	pg, err := devstack.StartPostgres(ctx, pgOpts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = pg.Stop() })

	frame, reg := testRegistry(t)
	n, err := node.Start(ctx, node.Options{
		Frame: frame, Registry: reg, PostgresAdminURL: pg.AdminURL(),
		TemporalAddr: testenv.TemporalAddr(t), KafkaBrokers: testenv.KafkaBrokers(t), DataDir: t.TempDir(), Log: quietLog,
	})
	require.NoError(t, err)
	t.Cleanup(func() { n.Stop(context.Background()) })

	status, body := getReady(t, n.URL())
	require.Equal(t, http.StatusOK, status, body)
	require.Equal(t, map[string]string{"postgres": "ok", "temporal": "ok", "kafka": "ok"}, body.Checks)

	require.NoError(t, pg.Stop())
	status, body = getReady(t, n.URL())
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.Equal(t, "unavailable", body.Status)
	require.NotNil(t, body.Error)
	require.Equal(t, "unavailable", body.Error.Code)
	require.Contains(t, body.Error.Message, "postgres")
	require.NotContains(t, body.Error.Message, "temporal")
	require.Equal(t, "ok", body.Checks["temporal"])
	// The check's name only: the driver's text names host, port, user
	// and database, which an unauthenticated probe must not tell.
	require.Equal(t, "error", body.Checks["postgres"])
	require.Equal(t, "not ready: postgres unreachable", body.Error.Message)

	// /healthz only says the process is up.
	resp, err := http.Get(n.URL() + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	pg, err = devstack.StartPostgres(ctx, pgOpts)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		status, _ := getReady(t, n.URL())
		return status == http.StatusOK
	}, 30*time.Second, 200*time.Millisecond, "readyz recovers once Postgres is back")
}

// A node whose Temporal cannot be reached fails to start with an error
// naming its address; the cleanup of what it had started must not trip over the
// nil node the failure returns.
func TestStartFailureReturnsTheError(t *testing.T) {
	t.Parallel()
	frame, reg := testRegistry(t)
	port, err := devstack.FreePort("127.0.0.1")
	require.NoError(t, err)
	reg.APIPort = port
	frame.Registries[0].APIPort = port
	n, err := node.Start(context.Background(), node.Options{
		Frame: frame, Registry: reg, PostgresAdminURL: testenv.PostgresURL(t),
		TemporalAddr: "127.0.0.1:1", DataDir: t.TempDir(), Log: quietLog,
	})
	require.ErrorContains(t, err, "127.0.0.1:1")
	require.Nil(t, n)
	// The API was listening when the worker failed; the cleanup closed it.
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	require.NoError(t, err, "the failed node left its API port bound")
	require.NoError(t, l.Close())
}

func TestNodeServesInfoMetricsAndSchedules(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	frame, reg := testRegistry(t)
	dataDir := t.TempDir()
	n, err := node.Start(ctx, node.Options{
		Frame: frame, Registry: reg, PostgresAdminURL: testenv.PostgresURL(t),
		TemporalAddr: testenv.TemporalAddr(t), KafkaBrokers: testenv.KafkaBrokers(t), DataDir: dataDir, Log: quietLog,
	})
	require.NoError(t, err)
	t.Cleanup(func() { n.Stop(context.Background()) })

	// The inter-service listener speaks SPIFFE mTLS with an SVID from the
	// frame's dev CA: a workload of the trust domain gets in, a client
	// without a certificate does not.
	td, err := identity.FrameTrustDomain(frame)
	require.NoError(t, err)
	ca, err := identity.OpenCA(dataDir, td, identity.CAOptions{})
	require.NoError(t, err)
	callerID := spiffeid.RequireFromPath(td, "/registry/peer-test")
	svid, err := ca.Issue(callerID, time.Minute)
	require.NoError(t, err)
	nodeID := spiffeid.RequireFromString(n.SPIFFEID)
	mtls := identity.NewTLS(svid, ca.X509Bundle(), identity.TLSOptions{}).HTTPClient(identity.AuthorizeID(nodeID), identity.HTTPClientOptions{})
	resp, err := mtls.Get(n.MTLSURL() + "/internal/v1/whoami")
	require.NoError(t, err)
	var who node.WhoAmI
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&who))
	resp.Body.Close()
	require.Equal(t, node.WhoAmI{Node: n.SPIFFEID, Caller: callerID.String()}, who)
	// Peers federate with the node's trust domain through its SPIFFE bundle
	// endpoint (https_spiffe): the fetched bundle is the frame CA's.
	otherTD := spiffeid.RequireTrustDomainFromString("peer.theprotocol.test")
	other, err := identity.NewEphemeralCA(otherTD, identity.CAOptions{})
	require.NoError(t, err)
	fed := identity.NewBundles(otherTD, other.X509Bundle(), identity.FederationOptions{})
	require.NoError(t, fed.AddPeer(ctx, identity.Peer{TrustDomain: td, EndpointURL: n.BundleURL(), Profile: identity.ProfileHTTPSSPIFFE, EndpointID: nodeID, Bundle: ca.SPIFFEBundle()}))
	pinned, ok := fed.Pinned(td)
	require.True(t, ok)
	require.True(t, pinned.X509Authorities()[0].Equal(ca.Certificate()))

	// Same server verification, no client certificate.
	anon := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsconfig.TLSClientConfig(ca.X509Bundle(), tlsconfig.AuthorizeID(nodeID))}}
	if resp, err := anon.Get(n.MTLSURL() + "/internal/v1/whoami"); err == nil {
		resp.Body.Close()
		require.Failf(t, "a client without an SVID got through", "status %d", resp.StatusCode)
	}

	resp, err = http.Get(n.URL() + "/api/v1/node")
	require.NoError(t, err)
	var info node.NodeInfo
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&info))
	resp.Body.Close()
	require.Equal(t, reg.ID, info.Registry)
	require.Equal(t, frame.ID, info.Frame)
	require.True(t, info.Mainframe)

	// Separate databases per role, named after registry and frame.
	require.Len(t, n.DBNames, 3)
	require.Equal(t, reg.DBName("registry"), n.DBNames["registry"])
	require.Equal(t, frame.EventStoreDBName(), n.DBNames["eventstore"])

	resp, err = http.Get(n.URL() + "/no/such/route")
	require.NoError(t, err)
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	require.JSONEq(t, `{"error":{"code":"not_found","message":"no route GET /no/such/route"}}`, string(raw))

	resp, err = http.Get(n.URL() + "/metrics")
	require.NoError(t, err)
	raw, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, string(raw), `http_requests_total{method="GET",route="/api/v1/node",status="200"} 1`)
	require.Contains(t, string(raw), `http_requests_total{method="GET",route="unmatched",status="404"} 1`)
	require.Contains(t, string(raw), "go_goroutines")

	// The worker created the sweep schedule; a second start is idempotent.
	h := n.Temporal.ScheduleClient().GetHandle(ctx, worker.IdempotencySweepScheduleID(reg.ID))
	// A describe is a query to the schedule's workflow, which a busy dev
	// server can time out: ask again until it answers.
	var desc *client.ScheduleDescription
	require.Eventually(t, func() bool {
		desc, err = h.Describe(ctx)
		return err == nil
	}, 2*time.Minute, 200*time.Millisecond, "describe the sweep schedule")
	action, ok := desc.Schedule.Action.(*client.ScheduleWorkflowAction)
	require.True(t, ok, "%T", desc.Schedule.Action)
	require.Equal(t, "IdempotencySweep", action.Workflow)
	require.Equal(t, reg.TaskQueue(), action.TaskQueue)
	require.NoError(t, worker.EnsureSchedules(ctx, n.Temporal, worker.Options{Registry: reg.ID, TaskQueue: reg.TaskQueue()}, workflows.IdempotencySweepFamily, workflows.HoldExpiryFamily))
	require.Eventually(t, func() bool {
		_, err = n.Temporal.ScheduleClient().GetHandle(ctx, worker.HoldExpiryScheduleID(reg.ID)).Describe(ctx)
		return err == nil
	}, 2*time.Minute, 200*time.Millisecond, "the TEG's hold expiry sweep is scheduled")
	t.Cleanup(func() {
		_ = h.Delete(context.Background())
		_ = n.Temporal.ScheduleClient().GetHandle(context.Background(), worker.HoldExpiryScheduleID(reg.ID)).Delete(context.Background())
	})
}
