package node_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/theprotocol-dev/theprotocol/config"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/fedgov"
	"github.com/theprotocol-dev/theprotocol/governance"
	"github.com/theprotocol-dev/theprotocol/identity"
	"github.com/theprotocol-dev/theprotocol/ingest"
	"github.com/theprotocol-dev/theprotocol/node"
	"github.com/theprotocol-dev/theprotocol/testenv"
	"github.com/theprotocol-dev/theprotocol/workflows"
)

type fedProposal struct {
	ID         string `json:"id"`
	State      string `json:"state"`
	Electorate int64  `json:"electorate_power"`
	Tally      *struct {
		Yes    int64 `json:"yes_power"`
		No     int64 `json:"no_power"`
		Passed bool  `json:"passed"`
	} `json:"tally"`
	EnactedAt  *time.Time `json:"enacted_at"`
	Federation struct {
		Role            string   `json:"role"`
		OriginRegistry  string   `json:"origin_registry"`
		TotalElectorate *int64   `json:"total_electorate_power"`
		Counted         []string `json:"counted"`
		Missing         []string `json:"missing"`
		Tallies         []struct {
			Registry  string `json:"registry"`
			Yes       int64  `json:"yes_power"`
			Signature []byte `json:"signature"`
		} `json:"tallies"`
	} `json:"federation"`
}

// TestGovernanceFederationEndToEnd runs the federation tier through the
// public API on three registries with real services: alpha-main (the
// mainframe of frame alpha), alpha-op1 (an operator registry of alpha,
// reached over the cross-registry mTLS channel) and beta-main (the
// mainframe of frame beta, reached through the frames' federated trust
// bundles). A passed local proposal of alpha-main is elevated, each
// registry's agent votes with its local power on its own registry, the
// aggregate counts the signed tallies of all three, the mainframe's
// operator vetoes it and nothing is enacted. A second federation proposal
// is tallied with alpha-op1 down: it is recorded as missing. Bad input is
// refused with a clear 4xx; every event reaches the EventStores and both
// frames' audits stay at delta 0.
func TestGovernanceFederationEndToEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	gs := config.GovernanceSettings{Limits: governance.DefaultLimits}
	gs.MinWindow, gs.VetoWindow, gs.CollectWindow = time.Second, 20*time.Second, 4*time.Second

	// Frame alpha: its mainframe and an operator registry, peered.
	p := newXferPair(t, nil)
	p.srcOpts.GovernanceSettings, p.dstOpts.GovernanceSettings = gs, gs
	p.dstOpts.WriteAdminCredentials = true
	var err error
	p.src, err = node.Start(ctx, p.srcOpts)
	require.NoError(t, err)
	t.Cleanup(func() { p.src.Stop(context.Background()) })
	t.Cleanup(func() { deleteSchedules(p.src, p.srcReg.ID); deleteSchedules(p.src, p.dstReg.ID) })
	p.dstOpts.EventStoreURL = p.src.URL()
	p.startDst()
	require.NoError(t, p.src.ConnectPeer(ctx, p.dstReg.ID, p.dst.MTLSURL()))
	require.NoError(t, p.dst.ConnectPeer(ctx, p.srcReg.ID, p.src.MTLSURL()))
	alphaMain, alphaOp1 := p.srcReg.ID, p.dstReg.ID

	// Frame beta: one mainframe, federated with alpha's.
	suffix := fmt.Sprintf("%d", time.Now().UnixNano()%1_000_000_000)
	betaReg := config.Registry{ID: "gb-main" + suffix, Mainframe: true, Roles: []string{"registry", "teg", "eventstore", "worker"}, Namespace: testenv.TestNamespace}
	betaFrame := config.Frame{ID: "gb" + suffix, TrustDomain: "gb" + suffix + ".theprotocol.test", Currency: "BVT", Genesis: true,
		GenesisSupplyUnits: 1_000_000 * avt, Registries: []config.Registry{betaReg}}
	betaDir := t.TempDir()
	beta, err := node.Start(ctx, node.Options{
		Frame: betaFrame, Registry: betaReg, PostgresAdminURL: testenv.PostgresURL(t),
		TemporalAddr: testenv.TemporalAddr(t), KafkaBrokers: testenv.KafkaBrokers(t),
		DataDir: betaDir, WriteAdminCredentials: true, Log: quietLog, GovernanceSettings: gs,
	})
	require.NoError(t, err)
	t.Cleanup(func() { beta.Stop(context.Background()) })
	t.Cleanup(func() { deleteSchedules(beta, betaReg.ID) })
	require.NoError(t, node.ConnectFrames(ctx, p.src, beta))

	// The operator registry's treasury, funded by the mainframe, pays its grants.
	require.NoError(t, p.src.FundFrameOperators(ctx))
	ca, cb, co := httpClient{t, p.src.URL()}, httpClient{t, beta.URL()}, httpClient{t, p.dst.URL()}
	adminA, adminB, adminO := ca.adminToken(p.srcDir, alphaMain), cb.adminToken(betaDir, betaReg.ID), co.adminToken(p.srcDir, alphaOp1)
	require.Eventually(t, func() bool { b, _ := balance(t, p.dst, "treasury"); return b > 0 }, 60*time.Second, 100*time.Millisecond, "alpha-op1 funded")
	voter := func(c httpClient, admin, name string, amount string) (string, string) {
		did, tok := bridgeAgent(t, c, admin, name+"-"+suffix)
		require.Equal(t, 201, c.call("POST", "/api/v1/admin/grants", admin, map[string]any{"to": did, "amount": "1000", "reason": "governance e2e"}, nil))
		require.Equal(t, 201, c.call("POST", "/api/v1/staking/stake", tok, map[string]any{"tier": "365d", "amount": amount}, nil))
		return did, tok
	}
	alice, aliceTok := voter(ca, adminA, "alice", "400") // alpha-main
	olga, olgaTok := voter(co, adminO, "olga", "100")    // alpha-op1
	bob, bobTok := voter(cb, adminB, "bob", "900")       // beta-main
	_, carolTok := bridgeAgent(t, ca, adminA, "carol-"+suffix)
	t.Cleanup(func() { terminateBonds(p.src, alice, olga, bob) })

	// Two local proposals of alice on alpha-main pass.
	local := func(title string) string {
		var lp struct {
			ID string `json:"id"`
		}
		require.Equal(t, 201, ca.call("POST", "/api/v1/governance/proposals", aliceTok, map[string]any{"title": title, "window_seconds": 2,
			"quorum_bps": 5000, "threshold_bps": 5000, "change": map[string]any{"kind": "fee_curve", "fee_curve": map[string]any{"base_bps": 20, "max_bps": 300}}}, &lp))
		require.Equal(t, 200, ca.call("POST", "/api/v1/governance/proposals/"+lp.ID+"/vote", aliceTok, map[string]any{"choice": "yes"}, nil))
		return lp.ID
	}
	l1, l2 := local("federation fee"), local("federation fee, again")
	elevate := func(id string, window int) (int, fedProposal) {
		var fp fedProposal
		return ca.call("POST", "/api/v1/governance/federation/propose", aliceTok, map[string]any{"proposal_id": id, "window_seconds": window}, &fp), fp
	}
	st, _ := elevate(l1, 10)
	require.Equal(t, 422, st, "an open proposal is not elevated")
	for _, l := range []string{l1, l2} {
		var lp struct {
			State string `json:"state"`
		}
		require.Eventually(t, func() bool {
			require.Equal(t, 200, ca.call("GET", "/api/v1/governance/proposals/"+l, aliceTok, nil, &lp))
			return lp.State != governance.StateOpen
		}, 60*time.Second, 100*time.Millisecond)
		require.Equal(t, governance.StatePassed, lp.State)
	}
	require.Equal(t, 403, ca.call("POST", "/api/v1/governance/federation/propose", carolTok, map[string]any{"proposal_id": l1, "window_seconds": 10}, nil), "only its proposer")
	require.Equal(t, 404, ca.call("POST", "/api/v1/governance/federation/propose", aliceTok, map[string]any{"proposal_id": uuid.NewString(), "window_seconds": 10}, nil))
	require.Equal(t, 400, ca.call("POST", "/api/v1/governance/federation/propose", aliceTok, map[string]any{"proposal_id": l1, "window_seconds": 0}, nil))

	st, f1 := elevate(l1, 12)
	require.Equal(t, 201, st)
	require.Equal(t, "origin", f1.Federation.Role)
	st, again := elevate(l1, 12)
	require.Equal(t, 201, st)
	require.Equal(t, f1.ID, again.ID, "a local proposal is elevated once")

	// Each peer learns of it over mTLS and holds its own snapshot.
	announced := func(id string) {
		for _, side := range []struct {
			c   httpClient
			tok string
		}{{co, olgaTok}, {cb, bobTok}} {
			var fp fedProposal
			ok := assert.Eventually(t, func() bool {
				return side.c.call("GET", "/api/v1/governance/federation/proposals/"+id, side.tok, nil, &fp) == 200
			}, 60*time.Second, 500*time.Millisecond, "announced")
			if !ok {
				// Why: the failures of the announcing workflow.
				it := p.src.Temporal.GetWorkflowHistory(ctx, workflows.GovernanceFederationTallyWorkflowID(alphaMain, id), "", false, 0)
				for it.HasNext() {
					ev, err := it.Next()
					if err != nil {
						break
					}
					if a := ev.GetActivityTaskFailedEventAttributes(); a != nil {
						t.Logf("failed: %v", a.GetFailure().GetMessage())
					}
				}
				t.FailNow()
			}
			require.Equal(t, "peer", fp.Federation.Role)
			require.Equal(t, alphaMain, fp.Federation.OriginRegistry)
			require.Positive(t, fp.Electorate)
		}
	}
	announced(f1.ID)
	vote := func(c httpClient, tok, id, choice string) int {
		return c.call("POST", "/api/v1/governance/federation/proposals/"+id+"/vote", tok, map[string]any{"choice": choice}, nil)
	}
	require.Equal(t, 200, vote(ca, aliceTok, f1.ID, "yes"))
	require.Equal(t, 200, vote(co, olgaTok, f1.ID, "yes"))
	require.Equal(t, 200, vote(cb, bobTok, f1.ID, "yes"))
	// Bad input: twice, unknown, the local route, the federation route for a local proposal.
	require.Equal(t, 409, vote(cb, bobTok, f1.ID, "yes"), "twice")
	require.Equal(t, 404, vote(co, olgaTok, uuid.NewString(), "yes"), "no such federation proposal")
	require.Equal(t, 404, vote(ca, aliceTok, l1, "yes"), "a local proposal")
	require.Equal(t, 400, ca.call("POST", "/api/v1/governance/proposals/"+f1.ID+"/vote", aliceTok, map[string]any{"choice": "no"}, nil), "the local route")
	// A workload of alpha that is no peer registry cannot announce.
	td := spiffeid.RequireTrustDomainFromString(p.frame.TrustDomain)
	frameCA, err := identity.OpenCA(p.srcDir, td, identity.CAOptions{})
	require.NoError(t, err)
	intruder, err := frameCA.Issue(spiffeid.RequireFromPath(td, "/teg/intruder"), time.Hour)
	require.NoError(t, err)
	cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsconfig.MTLSClientConfig(intruder, frameCA.X509Bundle(), tlsconfig.AuthorizeAny())}}
	resp, err := cl.Post(p.dst.MTLSURL()+fedgov.AnnouncePath, "application/json", strings.NewReader(`{"proposal_id":"`+uuid.NewString()+`","origin_registry":"intruder"}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "a non-federated caller")
	resp, err = cl.Post(p.dst.MTLSURL()+fedgov.AnnouncePath+"/"+f1.ID+"/tally", "application/json", strings.NewReader(`{}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "a non-federated caller asks for a tally")

	// The aggregate counts the signed tallies of all three registries.
	var got fedProposal
	require.Eventually(t, func() bool {
		require.Equal(t, 200, ca.call("GET", "/api/v1/governance/federation/proposals/"+f1.ID, aliceTok, nil, &got))
		return got.State != governance.StateOpen
	}, 90*time.Second, 100*time.Millisecond)
	require.Equal(t, governance.StatePassed, got.State)
	require.Equal(t, sorted([]string{alphaMain, alphaOp1, betaReg.ID}), sorted(got.Federation.Counted))
	require.Empty(t, got.Federation.Missing)
	require.Len(t, got.Federation.Tallies, 3)
	var sum int64
	for _, tl := range got.Federation.Tallies {
		require.Len(t, tl.Signature, 64)
		require.Positive(t, tl.Yes, tl.Registry)
		sum += tl.Yes
	}
	require.Equal(t, sum, got.Tally.Yes, "every registry's yes power is in the aggregate")
	require.Equal(t, 422, vote(cb, bobTok, f1.ID, "no"), "after the window")

	// The mainframe's operator vetoes within the veto window; nothing is enacted.
	vetoPath := "/api/v1/governance/federation/proposals/" + f1.ID + "/veto"
	require.Equal(t, 403, ca.call("POST", vetoPath, aliceTok, map[string]any{"reason": "mine"}, nil), "an agent cannot veto")
	require.Equal(t, 403, co.call("POST", vetoPath, adminO, map[string]any{"reason": "not the mainframe"}, nil), "an operator registry's admin cannot veto")
	require.Equal(t, 200, ca.call("POST", vetoPath, adminA, map[string]any{"reason": "the federation keeps its fee"}, &got))
	require.Equal(t, governance.StateVetoed, got.State)
	require.Equal(t, 409, ca.call("POST", vetoPath, adminA, map[string]any{"reason": "again"}, nil))
	require.Eventually(t, func() bool {
		d, err := p.src.Temporal.DescribeWorkflow(ctx, workflows.GovernanceFederationTallyWorkflowID(alphaMain, f1.ID), "")
		return err == nil && d.RawResponse.WorkflowExecutionInfo.Status == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED
	}, 60*time.Second, 200*time.Millisecond, "the vetoed proposal's workflow ends without enacting")
	require.Equal(t, 200, ca.call("GET", "/api/v1/governance/federation/proposals/"+f1.ID, aliceTok, nil, &got))
	require.Equal(t, governance.StateVetoed, got.State)
	require.Nil(t, got.EnactedAt)

	// A second federation proposal; alpha-op1 goes down (once its events
	// are in the EventStore) before its window ends: it is tallied without
	// alpha-op1 and says so.
	st, f2 := elevate(l2, 20)
	require.Equal(t, 201, st)
	announced(f2.ID)
	require.Equal(t, 200, vote(ca, aliceTok, f2.ID, "yes"))
	require.Equal(t, 200, vote(cb, bobTok, f2.ID, "no"))
	es := p.src.Pools[db.RoleEventStore]
	var opOutbox int
	require.NoError(t, p.dst.Pools[db.RoleTEG].QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&opOutbox))
	require.Eventually(t, func() bool {
		return countWhere(t, es, `SELECT count(*) FROM events WHERE registry = $1 AND source = 'teg'`, alphaOp1) == opOutbox
	}, 60*time.Second, 100*time.Millisecond, "alpha-op1's events reach the EventStore")
	require.Equal(t, 200, ca.call("GET", "/api/v1/governance/federation/proposals/"+f2.ID, aliceTok, nil, &got))
	require.Equal(t, governance.StateOpen, got.State, "alpha-op1 stops before the window ends (the machine was too slow for this test otherwise)")
	p.dst.Stop(ctx)
	require.Eventually(t, func() bool {
		require.Equal(t, 200, ca.call("GET", "/api/v1/governance/federation/proposals/"+f2.ID, aliceTok, nil, &got))
		return got.State != governance.StateOpen
	}, 120*time.Second, 200*time.Millisecond)
	require.Equal(t, []string{alphaOp1}, got.Federation.Missing, "the peer down is recorded as missing")
	require.Equal(t, sorted([]string{alphaMain, betaReg.ID}), sorted(got.Federation.Counted))

	// Events: in both EventStores, nothing quarantined, audits at delta 0.
	for _, side := range []struct {
		n     *node.Node
		reg   string
		frame string
		want  map[string]int
	}{
		{p.src, alphaMain, p.frame.ID, map[string]int{"ProposalElevated": 2, "ProposalTallied": 4, "ProposalVetoed": 1}},
		{beta, betaReg.ID, betaFrame.ID, map[string]int{"ProposalElevated": 2, "ProposalTallied": 2}},
	} {
		n := side.n
		var outboxRows int
		require.NoError(t, n.Pools[db.RoleTEG].QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&outboxRows))
		es := n.Pools[db.RoleEventStore]
		require.Eventually(t, func() bool {
			return countWhere(t, es, `SELECT count(*) FROM events WHERE registry = $1 AND source = 'teg'`, side.reg) == outboxRows
		}, 60*time.Second, 100*time.Millisecond, "all TEG events of %s reach the EventStore", side.reg)
		for typ, want := range side.want {
			require.Equal(t, want, countWhere(t, es, `SELECT count(*) FROM events WHERE registry = $1 AND event_type = $2`, side.reg, typ), "%s %s", side.reg, typ)
		}
		require.Zero(t, countWhere(t, es, `SELECT count(*) FROM events WHERE event_type = 'ProposalEnacted' AND envelope::text LIKE '%' || $1 || '%'`, f1.ID), "the vetoed proposal is never enacted")
		require.Zero(t, countWhere(t, es, `SELECT count(*) FROM quarantine`), "nothing quarantined")
		rep, err := ingest.Audit(ctx, es, side.frame)
		require.NoError(t, err)
		require.Zero(t, rep.Delta, "%s: %+v", side.frame, rep)
	}
	require.Equal(t, 2, countWhere(t, es, `SELECT count(*) FROM events WHERE registry = $1 AND event_type = 'ProposalElevated'`, alphaOp1), "alpha-op1 joined both")
}

func sorted(s []string) []string { return slices.Sorted(slices.Values(s)) }
