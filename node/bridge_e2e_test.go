package node_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/bridge"
	"github.com/theprotocol-dev/theprotocol/config"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/identity"
	"github.com/theprotocol-dev/theprotocol/ingest"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/node"
	"github.com/theprotocol-dev/theprotocol/testenv"
)

// bridgeFrames is two frames, each one mainframe node with its own trust
// domain, dev CA, databases and EventStore, federated with each other.
type bridgeFrames struct {
	t              *testing.T
	a, b           *node.Node
	fa, fb         config.Frame
	dirA, dirB     string
	ca, cb         httpClient
	adminA, adminB string
	alice, aliceT  string // agent on a
	bob, bobT      string // agent on b
	faultsMu       sync.Mutex
	faults         map[string]int // "<frame>:<op>[/after]" → failures left (-1: until cleared)
}

func (f *bridgeFrames) fault(frame, op string, after bool) error {
	key := frame + ":" + op
	if after {
		key += "/after"
	}
	f.faultsMu.Lock()
	defer f.faultsMu.Unlock()
	switch n := f.faults[key]; {
	case n == 0:
		return nil
	case n > 0:
		f.faults[key] = n - 1
	}
	return errors.New("injected: " + key)
}

func (f *bridgeFrames) setFault(key string, n int) {
	f.faultsMu.Lock()
	defer f.faultsMu.Unlock()
	f.faults[key] = n
}

func startBridgeFrames(t *testing.T) *bridgeFrames {
	ctx := context.Background()
	suffix := fmt.Sprintf("%d", time.Now().UnixNano()%1_000_000_000)
	f := &bridgeFrames{t: t, dirA: t.TempDir(), dirB: t.TempDir(), faults: map[string]int{}}
	start := func(id, currency, dir string) (*node.Node, config.Frame) {
		reg := config.Registry{ID: id + "-main" + suffix, Mainframe: true, Roles: []string{"registry", "teg", "eventstore", "worker"}, Namespace: testenv.TestNamespace}
		fr := config.Frame{ID: id + suffix, TrustDomain: id + suffix + ".theprotocol.test", Currency: currency, Genesis: currency == "AVT",
			GenesisSupplyUnits: 1_000_000 * avt, Registries: []config.Registry{reg}}
		n, err := node.Start(ctx, node.Options{
			Frame: fr, Registry: reg, PostgresAdminURL: testenv.PostgresURL(t),
			TemporalAddr: testenv.TemporalAddr(t), KafkaBrokers: testenv.KafkaBrokers(t),
			DataDir: dir, WriteAdminCredentials: true, Log: quietLog,
			BridgeSettings: func() config.BridgeSettings {
				s := config.DefaultBridgeSettings()
				s.Window = 6 * time.Second // the refund tests wait for it
				return s
			}(),
		})
		require.NoError(t, err)
		t.Cleanup(func() { n.Stop(context.Background()) })
		t.Cleanup(func() { deleteSchedules(n, reg.ID) })
		return n, fr
	}
	f.a, f.fa = start("ba", "AVT", f.dirA)
	f.b, f.fb = start("bb", "BVT", f.dirB)
	require.NoError(t, node.ConnectFrames(ctx, f.a, f.b))
	f.a.Bridge.Client.Fault = func(op, frame string, after bool) error { return f.fault("a", op, after) }
	f.b.Bridge.Client.Fault = func(op, frame string, after bool) error { return f.fault("b", op, after) }
	f.a.Bridge.Participant.Fault = func(op string, after bool) error { return f.fault("a-participant", op, after) }
	f.b.Bridge.Participant.Fault = func(op string, after bool) error { return f.fault("b-participant", op, after) }

	f.ca, f.cb = httpClient{t, f.a.URL()}, httpClient{t, f.b.URL()}
	f.adminA = f.ca.adminToken(f.dirA, f.fa.Registries[0].ID)
	f.adminB = f.cb.adminToken(f.dirB, f.fb.Registries[0].ID)
	f.alice, f.aliceT = bridgeAgent(t, f.ca, f.adminA, "alice-"+suffix)
	f.bob, f.bobT = bridgeAgent(t, f.cb, f.adminB, "bob-"+suffix)
	t.Cleanup(func() { terminateBonds(f.a, f.alice); terminateBonds(f.b, f.bob) })
	require.Equal(t, 201, f.ca.call("POST", "/api/v1/admin/grants", f.adminA, map[string]any{"to": f.alice, "amount": "1000", "reason": "e2e"}, nil))
	return f
}

// bridgeAgent creates a funded developer and one agent on the node behind
// c, and returns the agent's DID and token.
func bridgeAgent(t *testing.T, c httpClient, admin, name string) (string, string) {
	dev, devTok := c.signUp(name, name+"@example.org")
	require.Equal(t, 201, c.call("POST", "/api/v1/admin/grants", admin, map[string]any{"to": dev.AccountID, "amount": "100", "reason": "bonds"}, nil))
	var bt struct {
		Token string `json:"bootstrap_token"`
	}
	require.Equal(t, 201, c.call("POST", "/api/v1/bootstrap-tokens", devTok, map[string]any{}, &bt))
	var ag struct {
		DID          string `json:"did"`
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	require.Equal(t, 201, c.call("POST", "/api/v1/agents", bt.Token, map[string]any{}, &ag))
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	require.Equal(t, 200, c.call("POST", "/api/v1/auth/token", "", map[string]string{"grant_type": "client_credentials", "client_id": ag.ClientID, "client_secret": ag.ClientSecret}, &tok))
	return ag.DID, tok.AccessToken
}

type bridgeDTO struct {
	ID           uuid.UUID `json:"id"`
	Status       string    `json:"status"`
	Kind         string    `json:"kind"`
	FeeUnits     int64     `json:"fee_units"`
	Reason       string    `json:"reason"`
	WorkflowID   string    `json:"workflow_id"`
	Denomination string    `json:"denomination"`
}

func (f *bridgeFrames) wait(c httpClient, tok string, id uuid.UUID, want string) bridgeDTO {
	f.t.Helper()
	var x bridgeDTO
	require.Eventually(f.t, func() bool {
		require.Equal(f.t, 200, c.call("GET", "/api/v1/bridge/transfers/"+id.String(), tok, nil, &x))
		return x.Status != "pending"
	}, 60*time.Second, 50*time.Millisecond, "bridge transfer %s finishes", id)
	require.Equal(f.t, want, x.Status, "bridge transfer %s: %+v", id, x)
	return x
}

func (f *bridgeFrames) send(to string, amount int64) bridgeDTO {
	f.t.Helper()
	var x bridgeDTO
	require.Equal(f.t, 202, f.ca.call("POST", "/api/v1/bridge/transfers", f.aliceT, map[string]any{"frame": f.fb.ID, "to": to, "amount_units": amount}, &x))
	require.Equal(f.t, "native", x.Denomination)
	return x
}

func (f *bridgeFrames) redeem(to string, amount int64) bridgeDTO {
	f.t.Helper()
	var x bridgeDTO
	require.Equal(f.t, 202, f.cb.call("POST", "/api/v1/bridge/redemptions", f.bobT, map[string]any{"frame": f.fa.ID, "to": to, "amount_units": amount}, &x))
	require.Equal(f.t, "wrapped:"+f.fa.ID, x.Denomination)
	return x
}

// bucketOf reads a balance from a node's TEG (0 when the row is absent).
func bucketOf(t *testing.T, n *node.Node, account, bucket string) int64 {
	t.Helper()
	var units int64
	err := n.Pools[db.RoleTEG].QueryRow(context.Background(),
		`SELECT coalesce((SELECT units FROM balances WHERE account_id = $1 AND bucket = $2), 0)`, account, bucket).Scan(&units)
	require.NoError(t, err)
	return units
}

// consistent waits until both EventStores projected every TEG balance
// of the bridge's accounts, then checks both audits at delta 0 and the
// bridge reconciliation at difference 0 with nothing in flight.
func (f *bridgeFrames) consistent() {
	f.t.Helper()
	for _, side := range []struct {
		n   *node.Node
		reg string
	}{{f.a, f.fa.Registries[0].ID}, {f.b, f.fb.Registries[0].ID}} {
		n := side.n
		require.Eventually(f.t, func() bool {
			// Every TEG balance of a bridge account equals the EventStore's projection.
			rows, err := n.Pools[db.RoleTEG].Query(context.Background(),
				`SELECT account_id, bucket, units FROM balances WHERE bucket LIKE 'wrapped:%' OR bucket = 'locked_bridge' OR account_id LIKE 'did:%'`)
			require.NoError(f.t, err)
			defer rows.Close()
			for rows.Next() {
				var acct, bucket string
				var units, proj int64
				require.NoError(f.t, rows.Scan(&acct, &bucket, &units))
				acct = ingest.Qualify(side.reg, acct)
				_ = n.Pools[db.RoleEventStore].QueryRow(context.Background(),
					`SELECT coalesce((SELECT balance FROM projection_balances WHERE account = $1 AND bucket = $2), 0)`, acct, bucket).Scan(&proj)
				if proj != units {
					return false
				}
			}
			return true
		}, 30*time.Second, 100*time.Millisecond, "the EventStore projects every bridge balance")
		var rep ingest.AuditReport
		c := httpClient{f.t, n.URL()}
		require.Equal(f.t, 200, c.call("GET", "/api/v1/projections/supply-audit", "", nil, &rep))
		require.Zero(f.t, rep.Delta, "supply audit of %s: %+v", n.URL(), rep)
	}
	for _, side := range []struct {
		c     httpClient
		admin string
	}{{f.ca, f.adminA}, {f.cb, f.adminB}} {
		var rep bridge.Report
		require.Equal(f.t, 200, side.c.call("GET", "/api/v1/projections/bridge-reconciliation", side.admin, nil, &rep))
		require.Len(f.t, rep.Pairs, 1)
		p := rep.Pairs[0]
		require.True(f.t, p.PeerReachable, "%+v", p)
		require.Zero(f.t, p.Difference, "%+v", p)
		require.Zero(f.t, p.InFlightSends, "%+v", p)
		require.Zero(f.t, p.InFlightRedemptions, "%+v", p)
		require.Equal(f.t, p.EscrowUnits, p.WrappedUnits, "%+v", p)
	}
}

// TestBridgeEndToEnd: an agent on frame A pays an agent on frame B through
// the public API (A locks, B mints wrapped A tokens less the fee), the B
// agent redeems part back (B burns, A releases from its escrow), and the
// faults of SPEC §6.2 end with both frames consistent and every operation
// fully applied or fully refunded. After each step both supply audits are
// at delta 0 and the bridge reconciliation at difference 0.
func TestBridgeEndToEnd(t *testing.T) {
	t.Parallel()
	f := startBridgeFrames(t)
	wrappedA := ledger.WrappedBucket(f.fa.ID)
	escrow := ledger.BridgeEscrowAccount(f.fb.ID)
	aliceStart := bucketOf(t, f.a, f.alice, "liquid")
	sent, bobHas := int64(0), int64(0)

	t.Run("send then redeem", func(t *testing.T) {
		amount := 10 * avt
		x := f.send(f.bob, amount)
		done := f.wait(f.ca, f.aliceT, x.ID, "completed")
		fee := (amount*50 + 9_999) / 10_000
		require.Equal(t, fee, done.FeeUnits)
		sent, bobHas = amount, amount-fee
		require.Equal(t, aliceStart-amount, bucketOf(t, f.a, f.alice, "liquid"))
		require.Equal(t, amount, bucketOf(t, f.a, escrow, "locked_bridge"))
		require.Equal(t, bobHas, bucketOf(t, f.b, f.bob, wrappedA))
		require.Equal(t, fee, bucketOf(t, f.b, ledger.AccountFeeCollector, wrappedA), "the fee is the target frame's, in wrapped tokens")
		require.Zero(t, bucketOf(t, f.b, f.bob, "liquid"), "nothing native is minted on B")
		require.Zero(t, bucketOf(t, f.b, f.bob, ledger.WrappedBucket(f.fb.ID)), "B never wraps its own currency")
		// The balance response shows the wrapped bucket, named for its origin.
		var bal struct {
			Buckets []struct {
				Bucket       string `json:"bucket"`
				Units        int64  `json:"units"`
				Denomination string `json:"denomination"`
				OriginFrame  string `json:"origin_frame"`
			} `json:"buckets"`
		}
		require.Equal(t, 200, f.cb.call("GET", "/api/v1/agents/"+f.bob+"/balance", f.bobT, nil, &bal))
		found := false
		for _, b := range bal.Buckets {
			found = found || (b.Bucket == wrappedA && b.Units == bobHas && b.Denomination == "wrapped" && b.OriginFrame == f.fa.ID)
			if b.Bucket == "liquid" {
				require.Equal(t, "native", b.Denomination)
			}
		}
		require.True(t, found, "%+v", bal)
		f.consistent()

		back := 4 * avt
		r := f.redeem(f.alice, back)
		f.wait(f.cb, f.bobT, r.ID, "completed")
		bobHas -= back
		sent -= back
		require.Equal(t, bobHas, bucketOf(t, f.b, f.bob, wrappedA))
		require.Equal(t, aliceStart-amount+back, bucketOf(t, f.a, f.alice, "liquid"))
		require.Equal(t, sent, bucketOf(t, f.a, escrow, "locked_bridge"))
		f.consistent()
	})

	t.Run("B unreachable at mint: unlocked, sender whole", func(t *testing.T) {
		before := bucketOf(t, f.a, f.alice, "liquid")
		f.setFault("a:apply", -1)
		f.setFault("a:status", -1)
		x := f.send(f.bob, 2*avt)
		done := f.wait(f.ca, f.aliceT, x.ID, "refunded")
		require.Contains(t, done.Reason, "unreachable")
		f.setFault("a:apply", 0)
		f.setFault("a:status", 0)
		require.Equal(t, before, bucketOf(t, f.a, f.alice, "liquid"))
		require.Equal(t, bobHas, bucketOf(t, f.b, f.bob, wrappedA))
		// A late delivery of the refunded transfer is refused by B.
		ans := f.a.Bridge.Client.Deliver(context.Background(), activities.BridgeRecord{ID: x.ID, Kind: "send", PeerFrame: f.fb.ID,
			Recipient: f.bob, AmountUnits: 2 * avt, ExpiresAt: time.Now().Add(-time.Second)})
		require.Equal(t, activities.BridgeRefused, ans.Outcome, "%+v", ans)
		require.Equal(t, bobHas, bucketOf(t, f.b, f.bob, wrappedA))
		// Operators find it through the saga admin API, with its frames.
		var page struct {
			Sagas []struct {
				WorkflowID  string `json:"workflow_id"`
				SagaState   string `json:"saga_state"`
				SourceFrame string `json:"source_frame"`
				TargetFrame string `json:"target_frame"`
			} `json:"sagas"`
		}
		require.Eventually(t, func() bool {
			require.Equal(t, 200, f.ca.call("GET", "/api/v1/admin/sagas?state=Refunded", f.adminA, nil, &page))
			for _, s := range page.Sagas {
				if s.WorkflowID == done.WorkflowID {
					return s.SourceFrame == f.fa.ID && s.TargetFrame == f.fb.ID
				}
			}
			return false
		}, 30*time.Second, 200*time.Millisecond)
		// A replay of a finished bridge saga names it and finds it not running.
		require.Equal(t, 404, f.ca.call("POST", "/api/v1/admin/sagas/"+done.WorkflowID+"/replay", f.adminA, map[string]any{}, nil))
		f.consistent()
	})

	t.Run("mint applied, reply lost: one mint, no unlock", func(t *testing.T) {
		f.setFault("b-participant:apply/after", 2)
		amount := 3 * avt
		x := f.send(f.bob, amount)
		done := f.wait(f.ca, f.aliceT, x.ID, "completed")
		bobHas += amount - done.FeeUnits
		sent += amount
		require.Equal(t, bobHas, bucketOf(t, f.b, f.bob, wrappedA))
		require.Equal(t, sent, bucketOf(t, f.a, escrow, "locked_bridge"))
		f.consistent()
	})

	t.Run("A unreachable during redeem: retried, then completed", func(t *testing.T) {
		f.setFault("b:apply", 2)
		r := f.redeem(f.alice, avt)
		f.wait(f.cb, f.bobT, r.ID, "completed")
		bobHas -= avt
		sent -= avt
		require.Equal(t, bobHas, bucketOf(t, f.b, f.bob, wrappedA))
		require.Equal(t, sent, bucketOf(t, f.a, escrow, "locked_bridge"))
		f.consistent()
	})

	t.Run("release refused by A: re-minted", func(t *testing.T) {
		nobody := "did:theprotocol:" + uuid.NewString()
		r := f.redeem(nobody, avt)
		done := f.wait(f.cb, f.bobT, r.ID, "refunded")
		require.Contains(t, done.Reason, "does not exist")
		require.Equal(t, bobHas, bucketOf(t, f.b, f.bob, wrappedA), "the holder is whole again")
		require.Equal(t, sent, bucketOf(t, f.a, escrow, "locked_bridge"))
		f.consistent()
	})

	t.Run("duplicate deliveries apply once", func(t *testing.T) {
		// The same request twice (same Idempotency-Key): one transfer.
		req := func() bridgeDTO {
			var x bridgeDTO
			raw, err := json.Marshal(map[string]any{"frame": f.fb.ID, "to": f.bob, "amount_units": avt})
			require.NoError(t, err)
			hr, err := http.NewRequest("POST", f.a.URL()+"/api/v1/bridge/transfers", bytes.NewReader(raw))
			require.NoError(t, err)
			hr.Header.Set("Content-Type", "application/json")
			hr.Header.Set("Idempotency-Key", "dup-once")
			hr.Header.Set("Authorization", "Bearer "+f.aliceT)
			resp, err := http.DefaultClient.Do(hr)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, 202, resp.StatusCode)
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&x))
			return x
		}
		x1, x2 := req(), req()
		require.Equal(t, x1.ID, x2.ID)
		done := f.wait(f.ca, f.aliceT, x1.ID, "completed")
		bobHas += avt - done.FeeUnits
		sent += avt
		// Every participant call again, directly: the same answers, nothing moves.
		rec := activities.BridgeRecord{ID: x1.ID, Kind: "send", PeerFrame: f.fb.ID, Recipient: f.bob, AmountUnits: avt, ExpiresAt: time.Now().Add(time.Minute)}
		for range 2 {
			require.Equal(t, activities.BridgeApplied, f.a.Bridge.Client.Deliver(context.Background(), rec).Outcome)
			require.Equal(t, activities.BridgeApplied, f.a.Bridge.Client.Ask(context.Background(), rec).Outcome)
		}
		// The same ID with other terms is not applied.
		rec.AmountUnits = 2 * avt
		require.NotEqual(t, activities.BridgeApplied, f.a.Bridge.Client.Deliver(context.Background(), rec).Outcome)
		require.Equal(t, bobHas, bucketOf(t, f.b, f.bob, wrappedA))
		require.Equal(t, sent, bucketOf(t, f.a, escrow, "locked_bridge"))
		f.consistent()
	})

	t.Run("POST /transfers to a receiver of frame B goes over the bridge", func(t *testing.T) {
		before := bucketOf(t, f.a, f.alice, "liquid")
		amount, key := 3*avt, "xframe-"+uuid.NewString()
		body := map[string]any{"to": f.bob, "amount_units": amount, "memo": "across frames"}
		var x bridgeDTO
		require.Equal(t, 202, callWithKey(t, f.a.URL(), "POST", "/api/v1/transfers", f.aliceT, key, body, &x))
		require.Equal(t, "send", x.Kind)
		require.Equal(t, "native", x.Denomination)
		require.Equal(t, "bridge-"+x.ID.String(), x.WorkflowID)
		// The same request again (same Idempotency-Key): the same transfer.
		var again bridgeDTO
		require.Equal(t, 202, callWithKey(t, f.a.URL(), "POST", "/api/v1/transfers", f.aliceT, key, body, &again))
		require.Equal(t, x.ID, again.ID)
		done := f.wait(f.ca, f.aliceT, x.ID, "completed")
		bobHas += amount - done.FeeUnits
		sent += amount
		require.Equal(t, before-amount, bucketOf(t, f.a, f.alice, "liquid"), "paid once")
		require.Equal(t, bobHas, bucketOf(t, f.b, f.bob, wrappedA))
		require.Equal(t, sent, bucketOf(t, f.a, escrow, "locked_bridge"))
		// The sender follows it where it paid: GET /transfers/{id}.
		var got bridgeDTO
		require.Equal(t, 200, f.ca.call("GET", "/api/v1/transfers/"+x.ID.String(), f.aliceT, nil, &got))
		require.Equal(t, x.ID, got.ID)
		require.Equal(t, "completed", got.Status)
		require.Equal(t, 404, f.ca.call("GET", "/api/v1/transfers/"+uuid.NewString(), f.aliceT, nil, nil))

		// A DID no frame knows: 404, nothing written on either frame.
		var rows int
		count := func() int {
			require.NoError(t, f.a.Pools[db.RoleTEG].QueryRow(context.Background(),
				`SELECT count(*) FROM bridge_transfers WHERE sender = $1`, f.alice).Scan(&rows))
			return rows
		}
		n0 := count()
		nobody := "did:theprotocol:" + uuid.NewString()
		require.Equal(t, 404, callWithKey(t, f.a.URL(), "POST", "/api/v1/transfers", f.aliceT, uuid.NewString(), map[string]any{"to": nobody, "amount_units": avt}, nil))
		require.Equal(t, n0, count())
		require.Equal(t, before-amount, bucketOf(t, f.a, f.alice, "liquid"))
		require.Equal(t, bobHas, bucketOf(t, f.b, f.bob, wrappedA))
		f.consistent()
	})

	t.Run("bad input writes nothing", func(t *testing.T) {
		before := bucketOf(t, f.a, f.alice, "liquid")
		require.Equal(t, 400, f.ca.call("POST", "/api/v1/bridge/transfers", f.aliceT, map[string]any{"frame": f.fb.ID, "to": f.bob, "amount_units": -1}, nil))
		require.Equal(t, 400, f.ca.call("POST", "/api/v1/bridge/transfers", f.aliceT, map[string]any{"frame": f.fa.ID, "to": f.bob, "amount_units": avt}, nil))
		require.Equal(t, 400, f.ca.call("POST", "/api/v1/bridge/transfers", f.aliceT, map[string]any{"frame": "nowhere", "to": f.bob, "amount_units": avt}, nil))
		require.Equal(t, 422, f.ca.call("POST", "/api/v1/bridge/transfers", f.aliceT, map[string]any{"frame": f.fb.ID, "to": f.bob, "amount_units": 1_000_000 * avt}, nil))
		require.Equal(t, 400, f.cb.call("POST", "/api/v1/bridge/redemptions", f.bobT, map[string]any{"frame": f.fa.ID, "to": f.alice}, nil))
		require.Equal(t, before, bucketOf(t, f.a, f.alice, "liquid"))
	})

	t.Run("callers outside the federation or of the same frame are refused", func(t *testing.T) {
		body := `{"id":"` + uuid.NewString() + `","kind":"mint","recipient":"` + f.bob + `","amount_units":100000000,"currency":"AVT","expires_at":"` + time.Now().Add(time.Minute).Format(time.RFC3339) + `"}`
		call := func(cfg *tls.Config) (int, error) {
			cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
			resp, err := cl.Post(f.b.MTLSURL()+bridge.PathApply, "application/json", strings.NewReader(body))
			if err != nil {
				return 0, err
			}
			defer resp.Body.Close()
			return resp.StatusCode, nil
		}
		tdB := spiffeid.RequireTrustDomainFromString(f.fb.TrustDomain)
		caB, err := identity.OpenCA(f.dirB, tdB, identity.CAOptions{})
		require.NoError(t, err)
		// A TEG of B's own frame (valid SVID, admitted by the listener):
		// the bridge refuses it.
		same, err := caB.Issue(spiffeid.RequireFromPath(tdB, "/teg/other"), time.Hour)
		require.NoError(t, err)
		status, err := call(tlsconfig.MTLSClientConfig(same, caB.X509Bundle(), tlsconfig.AuthorizeAny()))
		require.NoError(t, err)
		require.Equal(t, http.StatusForbidden, status)
		// A frame B does not federate with: its SVID does not verify.
		tdX := spiffeid.RequireTrustDomainFromString("x-" + f.fa.TrustDomain)
		caX, err := identity.NewEphemeralCA(tdX, identity.CAOptions{})
		require.NoError(t, err)
		stranger, err := caX.Issue(spiffeid.RequireFromPath(tdX, "/teg/"+f.fa.Registries[0].ID), time.Hour)
		require.NoError(t, err)
		status, err = call(tlsconfig.MTLSClientConfig(stranger, caB.X509Bundle(), tlsconfig.AuthorizeAny()))
		require.True(t, err != nil || status == http.StatusForbidden, "status %d err %v", status, err)
		// A's registry identity (federated trust domain, not its TEG).
		tdA := spiffeid.RequireTrustDomainFromString(f.fa.TrustDomain)
		caA, err := identity.OpenCA(f.dirA, tdA, identity.CAOptions{})
		require.NoError(t, err)
		reg, err := caA.Issue(spiffeid.RequireFromPath(tdA, "/registry/"+f.fa.Registries[0].ID), time.Hour)
		require.NoError(t, err)
		status, err = call(tlsconfig.MTLSClientConfig(reg, caB.X509Bundle(), tlsconfig.AuthorizeAny()))
		require.True(t, err != nil || status == http.StatusForbidden, "status %d err %v", status, err)
		// A's TEG itself is admitted.
		teg, err := caA.Issue(spiffeid.RequireFromPath(tdA, "/teg/"+f.fa.Registries[0].ID), time.Hour)
		require.NoError(t, err)
		status, err = call(tlsconfig.MTLSClientConfig(teg, caB.X509Bundle(), tlsconfig.AuthorizeAny()))
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, status)
		require.Equal(t, bobHas+avt-(avt*50+9_999)/10_000, bucketOf(t, f.b, f.bob, wrappedA))
		bobHas = bucketOf(t, f.b, f.bob, wrappedA)
		// That mint had no lock behind it on A: the reconciliation shows it.
		var rep bridge.Report
		require.Equal(t, 200, f.ca.call("GET", "/api/v1/projections/bridge-reconciliation", f.adminA, nil, &rep))
		require.Equal(t, int64(-avt), rep.Pairs[0].Difference)
	})
}
