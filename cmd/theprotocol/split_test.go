package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/config"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/devstack"
	"github.com/theprotocol-dev/theprotocol/testenv"
	"github.com/theprotocol-dev/theprotocol/testenv/logbuf"
)

// -roles narrows the one registry serve runs; with several (or dev's
// all), it is refused rather than applied to each.
func TestHostedRegistry(t *testing.T) {
	r := config.Registry{ID: "r1", Roles: []string{config.RoleRegistry, config.RoleTEG, config.RoleEventStore, config.RoleWorker}}
	var cfg config.Config
	got, err := hostedRegistry(cfg, r, nil)
	require.NoError(t, err)
	require.Equal(t, r, got)

	cfg.Split.Roles = []string{config.RoleEventStore}
	got, err = hostedRegistry(cfg, r, map[string]bool{"r1": true})
	require.NoError(t, err)
	require.Equal(t, []string{config.RoleEventStore}, got.Roles)
	_, err = hostedRegistry(cfg, r, nil)
	require.ErrorContains(t, err, "-registries")
	_, err = hostedRegistry(cfg, r, map[string]bool{"r1": true, "r2": true})
	require.ErrorContains(t, err, "-registries")
}

// Three `serve` processes run one registry's roles, each with its own
// topology entry's ports and -roles: the EventStore, the TEG, the
// registry. A developer signing up on the registry's process gets a
// wallet on the TEG's; an agent's bond is asked of the TEG's process
// (which refuses it: the wallet is empty); the developer's token works on
// the TEG's API; and the registry's events reach the EventStore's process.
func TestServeSplitRolesInThreeProcesses(t *testing.T) {
	testenv.SkipWithoutServices(t)
	t.Parallel()
	bin := binary(t)
	reg := fmt.Sprintf("sp%d", time.Now().UnixNano()%1_000_000_000)
	free := func() int {
		p, err := devstack.FreePort("127.0.0.1")
		require.NoError(t, err)
		return p
	}
	type proc struct {
		roles         string
		api, mtls, bd int
	}
	es := proc{roles: "eventstore", api: free(), mtls: free(), bd: free()}
	teg := proc{roles: "teg", api: free(), mtls: free(), bd: free()}
	rgy := proc{roles: "registry", api: free(), mtls: free(), bd: free()}
	dataDir := t.TempDir()
	pgURL := testenv.PostgresURL(t)
	hc := &http.Client{Timeout: 30 * time.Second} // a hung process fails the test, with its logs
	base := config.Registry{ID: reg, Mainframe: true, Roles: []string{config.RoleRegistry, config.RoleTEG, config.RoleEventStore}, Namespace: testenv.TestNamespace}
	frame := config.Frame{ID: "f" + reg, TrustDomain: "f" + reg + ".theprotocol.test", Currency: "AVT", Genesis: true, GenesisSupplyUnits: 1_000_000_00000000}
	t.Cleanup(func() {
		dropDatabases(t, pgURL, base.DBName(config.RoleRegistry), base.DBName(config.RoleTEG), frame.EventStoreDBName())
	})
	url := func(port int, scheme string) string { return fmt.Sprintf("%s://127.0.0.1:%d", scheme, port) }

	start := func(p proc, extra ...string) {
		r := base
		r.APIPort, r.MTLSPort, r.BundlePort = p.api, p.mtls, p.bd
		f := frame
		f.Registries = []config.Registry{r}
		raw, err := json.Marshal(config.Topology{Frames: []config.Frame{f}})
		require.NoError(t, err)
		topo := filepath.Join(dataDir, p.roles+"-topology.json")
		require.NoError(t, os.WriteFile(topo, raw, 0o600))
		args := append([]string{"serve", "-topology", topo, "-data-dir", dataDir, "-identity", "devca", "-registries", reg, "-roles", p.roles,
			"-postgres-url", pgURL, "-temporal-addr", testenv.TemporalAddr(t), "-kafka-brokers", strings.Join(testenv.KafkaBrokers(t), ","),
			"-eventstore-url", url(es.api, "http"), "-eventstore-mtls-url", url(es.mtls, "https")}, extra...)
		cmd := exec.Command(bin, args...)
		cmd.Env = withoutEnv(os.Environ(), config.EnvSPIFFEEndpointSocket, "THEPROTOCOL_IDENTITY", "THEPROTOCOL_ROLES")
		logs := &logbuf.Buffer{}
		cmd.Stdout, cmd.Stderr = logs, logs
		require.NoError(t, cmd.Start())
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		t.Cleanup(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
		})
		deadline := time.Now().Add(2 * time.Minute)
		for {
			select {
			case err := <-exited:
				t.Fatalf("serve -roles %s exited: %v\n%s", p.roles, err, logs.String())
			default:
			}
			// Live, not ready: the TEG's and the registry's processes are
			// each unready until the other answers.
			res, err := hc.Get(url(p.api, "http") + "/healthz")
			if err == nil {
				res.Body.Close()
				if res.StatusCode == 200 {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("serve -roles %s not ready: %v\n%s", p.roles, err, logs.String())
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	start(es)
	start(teg, "-registry-mtls-url", url(rgy.mtls, "https"))
	start(rgy, "-teg-mtls-url", url(teg.mtls, "https"))

	call := func(method, u, token string, body any, out any) int {
		t.Helper()
		var rd io.Reader
		if body != nil {
			raw, err := json.Marshal(body)
			require.NoError(t, err)
			rd = bytes.NewReader(raw)
		}
		req, err := http.NewRequest(method, u, rd)
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		if method == http.MethodPost {
			req.Header.Set("Idempotency-Key", uuid.NewString()+uuid.NewString())
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := hc.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		if out != nil {
			require.NoError(t, json.NewDecoder(res.Body).Decode(out))
		}
		return res.StatusCode
	}
	for _, p := range []proc{es, teg, rgy} {
		var info struct {
			Roles []string `json:"roles"`
		}
		require.Equal(t, 200, call("GET", url(p.api, "http")+"/api/v1/node", "", nil, &info))
		require.Equal(t, []string{p.roles}, info.Roles, "each process hosts only its -roles")
	}
	var dev struct {
		APIKey    string `json:"api_key"`
		AccountID string `json:"account_id"`
	}
	require.Equal(t, 201, call("POST", url(rgy.api, "http")+"/api/v1/developers", "", map[string]string{"name": "Ada", "email": "ada@example.org"}, &dev))
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	require.Equal(t, 200, call("POST", url(rgy.api, "http")+"/api/v1/auth/token", "", map[string]string{"grant_type": "api_key", "api_key": dev.APIKey}, &tok))

	ctx := context.Background()
	tegDSN, err := db.WithDatabase(pgURL, base.DBName(config.RoleTEG))
	require.NoError(t, err)
	conn, err := pgx.Connect(ctx, tegDSN)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var wallets int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM accounts WHERE id = $1`, dev.AccountID).Scan(&wallets))
	require.Equal(t, 1, wallets, "the wallet was opened on the TEG's process")

	var bt struct {
		Token string `json:"bootstrap_token"`
	}
	require.Equal(t, 201, call("POST", url(rgy.api, "http")+"/api/v1/bootstrap-tokens", tok.AccessToken, map[string]any{}, &bt))
	var refusal struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	require.Equal(t, 422, call("POST", url(rgy.api, "http")+"/api/v1/agents", bt.Token, map[string]any{}, &refusal))
	require.Equal(t, "insufficient_funds", refusal.Error.Code, "the TEG's process refused the bond")
	require.Equal(t, 200, call("GET", url(teg.api, "http")+"/api/v1/transfers", tok.AccessToken, nil, nil), "the registry's token works on the TEG's API")
	require.Equal(t, 401, call("GET", url(teg.api, "http")+"/api/v1/transfers", "forged", nil, nil))

	esDSN, err := db.WithDatabase(pgURL, frame.EventStoreDBName())
	require.NoError(t, err)
	esConn, err := pgx.Connect(ctx, esDSN)
	require.NoError(t, err)
	defer esConn.Close(ctx)
	require.Eventually(t, func() bool {
		var n int
		return esConn.QueryRow(ctx, `SELECT count(*) FROM events WHERE source = 'registry' AND registry = $1`, reg).Scan(&n) == nil && n > 0
	}, time.Minute, 200*time.Millisecond, "the registry's events reach the EventStore's process")
}
