package node_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/theprotocol-dev/theprotocol/config"
	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/registrystore"
	"github.com/theprotocol-dev/theprotocol/events"
	"github.com/theprotocol-dev/theprotocol/federation"
	"github.com/theprotocol-dev/theprotocol/node"
	"github.com/theprotocol-dev/theprotocol/testenv"
	"github.com/theprotocol-dev/theprotocol/workflows"
)

// cardLine is three registries of one frame peered in a line, A – B – C
// (A and C are not peers): C is the mainframe, so agents can be bonded
// there through the public API.
type cardLine struct {
	t       *testing.T
	a, b, c *node.Node
	ids     [3]string
	c0      httpClient
	admin   string
	dataDir string
}

// cardSyncInterval is short enough for a quick test and long enough not
// to load the shared Temporal server.
const cardSyncInterval = time.Second

func startCardLine(t *testing.T, tune ...func(i int, o *node.Options)) *cardLine {
	ctx := context.Background()
	suffix := fmt.Sprintf("%d", time.Now().UnixNano()%1_000_000_000)
	ids := [3]string{"la" + suffix, "lb" + suffix, "lc" + suffix}
	regs := []config.Registry{
		{ID: ids[0], Roles: []string{"registry", "teg", "worker"}, Namespace: testenv.TestNamespace},
		{ID: ids[1], Roles: []string{"registry", "teg", "worker"}, Namespace: testenv.TestNamespace},
		{ID: ids[2], Mainframe: true, Roles: []string{"registry", "teg", "eventstore", "worker"}, Namespace: testenv.TestNamespace},
	}
	frame := config.Frame{ID: "fl" + suffix, TrustDomain: "fl" + suffix + ".theprotocol.test", Currency: "AVT", Genesis: true,
		GenesisSupplyUnits: 1_000_000 * avt, Registries: regs}
	l := &cardLine{t: t, ids: ids, dataDir: t.TempDir()}
	opts := func(r config.Registry) node.Options {
		return node.Options{Frame: frame, Registry: r, PostgresAdminURL: testenv.PostgresURL(t), TemporalAddr: testenv.TemporalAddr(t),
			KafkaBrokers: testenv.KafkaBrokers(t), DataDir: l.dataDir, WriteAdminCredentials: true, Log: quietLog,
			FederationSync: config.FederationSyncSettings{Interval: cardSyncInterval}}
	}
	start := func(o node.Options) *node.Node {
		n, err := node.Start(ctx, o)
		require.NoError(t, err)
		t.Cleanup(func() { n.Stop(context.Background()) })
		return n
	}
	tuned := func(i int) node.Options {
		o := opts(regs[i])
		for _, f := range tune {
			f(i, &o)
		}
		return o
	}
	l.c = start(tuned(2))
	for i := range regs[:2] {
		o := tuned(i)
		o.EventStoreURL = l.c.URL()
		if i == 0 {
			l.a = start(o)
		} else {
			l.b = start(o)
		}
	}
	t.Cleanup(func() {
		for _, reg := range ids {
			deleteSchedules(l.c, reg)
			_ = l.c.Temporal.ScheduleClient().GetHandle(context.Background(), "xfer-prepare-sweep-"+reg).Delete(context.Background())
			for _, peer := range ids {
				_ = l.c.Temporal.TerminateWorkflow(context.Background(), workflows.FederationSyncWorkflowID(reg, peer), "", "test over")
			}
		}
	})
	require.NoError(t, l.a.ConnectPeer(ctx, ids[1], l.b.MTLSURL()))
	require.NoError(t, l.b.ConnectPeer(ctx, ids[0], l.a.MTLSURL()))
	require.NoError(t, l.b.ConnectPeer(ctx, ids[2], l.c.MTLSURL()))
	require.NoError(t, l.c.ConnectPeer(ctx, ids[1], l.b.MTLSURL()))
	l.c0 = httpClient{t, l.c.URL()}
	l.admin = l.c0.adminToken(l.dataDir, ids[2])
	return l
}

// register creates an agent on C (the mainframe) with a card, through the
// public API, and returns its DID and its developer's token.
func (l *cardLine) register(name string) (string, string) {
	t := l.t
	dev, devTok := l.c0.signUp("Dev "+name, name+"-"+l.ids[2]+"@example.org")
	require.Equal(t, 201, l.c0.call("POST", "/api/v1/admin/grants", l.admin, map[string]any{"to": dev.AccountID, "amount": "100", "reason": "bond"}, nil))
	var bt struct {
		Token string `json:"bootstrap_token"`
	}
	require.Equal(t, 201, l.c0.call("POST", "/api/v1/bootstrap-tokens", devTok, map[string]any{}, &bt))
	var ag struct {
		DID string `json:"did"`
	}
	require.Equal(t, 201, l.c0.call("POST", "/api/v1/agents", bt.Token, map[string]any{"card": map[string]any{
		"name": name, "description": "translates", "url": "https://agents.example/" + name,
		"skills": []map[string]any{{"id": "translate", "name": "Translate"}},
	}}, &ag))
	t.Cleanup(func() { terminateBonds(l.c, ag.DID) })
	return ag.DID, devTok
}

func cardsOf(t *testing.T, n *node.Node, did string) []federation.CardView {
	t.Helper()
	cs := n.CardSync()
	require.NotNil(t, cs)
	cards, err := cs.Cards(context.Background(), did)
	require.NoError(t, err)
	return cards
}

func (l *cardLine) waitCard(n *node.Node, did string, want func([]federation.CardView) bool, what string) {
	l.t.Helper()
	require.Eventually(l.t, func() bool { return want(cardsOf(l.t, n, did)) }, 120*time.Second, 100*time.Millisecond, what)
}

// TestCardSyncAcrossALine: a card registered on C reaches A through B (hop
// count 2, origin C, C's signature); a relay that alters it is rejected
// and counted while A keeps the genuine card; C's deregistration reaches A
// as a signed tombstone and the card disappears; suspending B on A makes
// C's cards disappear from A at once and stops A's pull of B, reinstating
// it brings them back and resumes the pull, revoking it ends both.
func TestCardSyncAcrossALine(t *testing.T) {
	l := startCardLine(t)
	ctx := context.Background()
	a, b, c := l.a, l.b, l.c
	idA, idB, idC := l.ids[0], l.ids[1], l.ids[2]

	// A card registered on C reaches A through B.
	began := time.Now()
	did, devTok := l.register("polyglot")
	l.waitCard(a, did, func(cs []federation.CardView) bool { return len(cs) == 1 }, "C's card reaches A")
	converged := time.Since(began)
	got := cardsOf(t, a, did)[0]
	require.Equal(t, idC, got.Origin)
	require.Equal(t, 2, got.Hops, "C → B → A")
	require.Equal(t, idB, got.Via)
	require.Contains(t, string(got.Card), `"https://agents.example/polyglot"`)
	require.Equal(t, 1, cardsOf(t, b, did)[0].Hops)
	require.Equal(t, 0, cardsOf(t, c, did)[0].Hops)
	var bytes float64
	for _, n := range []*node.Node{a, b, c} {
		bytes += n.CardSync().Metrics.Bytes()
	}
	t.Logf("card sync: a new card on C was seen on A after %s (interval %s; %0.f bytes pulled by the three registries so far)", converged, cardSyncInterval, bytes)
	// The traffic of an idle cycle (nothing new): A's pulls of B over
	// three quiet seconds.
	m := a.CardSync().Metrics
	b0, p0 := m.Bytes(), m.Pulls()
	time.Sleep(3 * time.Second)
	dp := m.Pulls() - p0
	t.Logf("card sync: idle, A pulled B %.0f times in 3s for %.0f bytes of feed", dp, m.Bytes()-b0)

	// B alters the card it relays (another URL, and a version above C's so
	// that only the signature stands in the way): A rejects it, counts it,
	// and keeps the genuine one.
	rejected := a.CardSync().Metrics.Rejected("signature")
	var tampered int64
	require.NoError(t, b.Pools[db.RoleRegistry].QueryRow(ctx, `UPDATE federation_cards
		SET body = convert_to(replace(convert_from(body, 'UTF8'), 'agents.example', 'evil.example'), 'UTF8'),
		    version = version + 1, seq = nextval('federation_card_seq')
		WHERE origin = $1 AND did = $2 RETURNING seq`, idC, did).Scan(&tampered))
	require.Eventually(t, func() bool {
		var cursor int64
		err := a.Pools[db.RoleRegistry].QueryRow(ctx, `SELECT cursor FROM federation_sync_cursors WHERE peer = $1`, idB).Scan(&cursor)
		return err == nil && cursor >= tampered
	}, 120*time.Second, 100*time.Millisecond, "A pulls past the altered card")
	held := cardsOf(t, a, did)[0]
	require.EqualValues(t, 1, held.Version, "A keeps the card C signed")
	require.Contains(t, string(held.Card), `"https://agents.example/polyglot"`)
	require.Greater(t, a.CardSync().Metrics.Rejected("signature"), rejected, "the altered card is counted")
	// B is repaired, so C's later tombstone (version 2) is newer there.
	_, err := b.Pools[db.RoleRegistry].Exec(ctx, `UPDATE federation_cards
		SET body = convert_to(replace(convert_from(body, 'UTF8'), 'evil.example', 'agents.example'), 'UTF8'), version = version - 1
		WHERE origin = $1 AND did = $2`, idC, did)
	require.NoError(t, err)

	// B forges a card in C's name for a DID of its own choosing, signed
	// with its own key: A has no key of C's by that ID and rejects it.
	unknown := a.CardSync().Metrics.Rejected("unknown_key")
	forged := "did:theprotocol:00000000-0000-4000-8000-" + fmt.Sprintf("%012d", time.Now().UnixNano()%1_000_000_000_000)
	_, err = b.Pools[db.RoleRegistry].Exec(ctx, `INSERT INTO federation_cards (origin, did, version, deleted, body, signed_at, key_id, signature, hops, via, seq, received_at)
		SELECT $1, $2, 1, false, body, signed_at, k.key_id, signature, 1, $3, nextval('federation_card_seq'), now()
		FROM federation_cards, federation_card_keys k WHERE origin = $1 AND did = $4 AND k.registry = $5`, idC, forged, idC, did, idB)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return a.CardSync().Metrics.Rejected("unknown_key") > unknown }, 120*time.Second, 100*time.Millisecond,
		"A rejects a card B signed in C's name")
	require.Empty(t, cardsOf(t, a, forged))

	// Deregistered on C: the signed tombstone reaches A.
	deregistered := time.Now()
	require.Equal(t, 200, l.c0.call("DELETE", "/api/v1/agents/"+did, devTok, map[string]any{}, nil))
	l.waitCard(a, did, func(cs []federation.CardView) bool { return len(cs) == 0 }, "the tombstone reaches A")
	t.Logf("card sync: C's tombstone was applied on A after %s", time.Since(deregistered))
	require.Empty(t, cardsOf(t, b, did))

	// Suspending B on A: C's cards (held through B) vanish from A's view at
	// once and A stops pulling B; reinstated, they are back at once and
	// the pull resumes (a card registered meanwhile arrives); revoked, they
	// vanish for good.
	registered := time.Now()
	did2, _ := l.register("scribe")
	l.waitCard(a, did2, func(cs []federation.CardView) bool { return len(cs) == 1 }, "the second card reaches A")
	t.Logf("card sync: with the syncs running, a new card on C was seen on A after %s (from its registration call)", time.Since(registered))
	peers := registrystore.NewPeers(a.Pools[db.RoleRegistry])
	decide := func(from, to string) {
		t.Helper()
		_, _, err := peers.SetStatus(ctx, registrystore.PeerChange{SpiffeID: spiffeTEG(a, idB).String(),
			From: []string{from}, To: to, By: "test", Reason: "licence " + to, Now: time.Now()}, nil)
		require.NoError(t, err)
	}
	syncStatus := func() enumspb.WorkflowExecutionStatus {
		d, err := a.Temporal.DescribeWorkflow(ctx, workflows.FederationSyncWorkflowID(idA, idB), "")
		if err != nil {
			return enumspb.WORKFLOW_EXECUTION_STATUS_UNSPECIFIED
		}
		return d.RawResponse.WorkflowExecutionInfo.GetStatus()
	}
	decide("active", "suspended")
	require.Empty(t, cardsOf(t, a, did2), "C's cards, held through B, disappear from A with B's licence")
	require.Len(t, cardsOf(t, b, did2), 1, "B still sees them")
	require.Eventually(t, func() bool { return syncStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED }, 120*time.Second, 100*time.Millisecond,
		"A's sync of B ends")
	did3, _ := l.register("envoy")
	l.waitCard(b, did3, func(cs []federation.CardView) bool { return len(cs) == 1 }, "B has the card registered during the suspension")
	require.Empty(t, cardsOf(t, a, did3))

	decide("suspended", "active")
	require.Len(t, cardsOf(t, a, did2), 1, "reinstated: held cards are seen again at once")
	l.waitCard(a, did3, func(cs []federation.CardView) bool { return len(cs) == 1 }, "the pull resumes")

	decide("active", "revoked")
	require.Empty(t, cardsOf(t, a, did2))
	require.Empty(t, cardsOf(t, a, did3))
	require.Eventually(t, func() bool { return syncStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED }, 120*time.Second, 100*time.Millisecond,
		"A's sync of B ends")
}

func peerStatusOn(t *testing.T, n *node.Node, registry string) string {
	t.Helper()
	var out struct {
		Peers []peerView `json:"peers"`
	}
	require.Equal(t, 200, httpClient{t, n.URL()}.call("GET", "/api/v1/federation/peers", "", nil, &out))
	for _, v := range out.Peers {
		if v.Registry == registry {
			return v.Status
		}
	}
	return "none"
}

// statusEvents lists n's FederationPeerStatusChanged events about peer as
// "from>to by".
func statusEvents(t *testing.T, n *node.Node, peer string) []string {
	t.Helper()
	rows, err := n.Pools[db.RoleRegistry].Query(context.Background(), `SELECT envelope->'payload'->>'from', envelope->'payload'->>'to', envelope->'payload'->>'by'
		FROM outbox WHERE envelope->>'type' = $1 AND envelope->'payload'->>'peer_registry' = $2 ORDER BY id`, events.TypeFederationPeerStatusChanged, peer)
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var from, to, by string
		require.NoError(t, rows.Scan(&from, &to, &by))
		out = append(out, from+">"+to+" "+by)
	}
	require.NoError(t, rows.Err())
	return out
}

// TestPeeringHandshake: an admin of A adds C (not peered) by its mTLS URL:
// both sides fetch each other's bundle and record the other pending; C's
// admin accepts, and both are active, each change an event with who and
// why; C's cards then reach A directly (one hop). B, whose policy accepts
// requests automatically, becomes active on both sides as soon as A's
// admin asks. Refusals: accepting twice, accepting on the asking side, a
// revoked peer asking again.
func TestPeeringHandshake(t *testing.T) {
	l := startCardLine(t, func(i int, o *node.Options) { o.FederationSync.AutoAccept = i == 1 })
	ctx := context.Background()
	a, b, c := l.a, l.b, l.c
	idA, idB, idC := l.ids[0], l.ids[1], l.ids[2]
	cA := httpClient{t, a.URL()}
	adminA := cA.adminToken(l.dataDir, idA)
	did, _ := l.register("herald")
	l.waitCard(a, did, func(cs []federation.CardView) bool { return len(cs) == 1 && cs[0].Hops == 2 }, "C's card reaches A through B")

	// A asks C: pending on both sides.
	var v peerView
	require.Equal(t, 201, cA.call("POST", "/api/v1/admin/federation/peers", adminA, map[string]any{"base_url": c.MTLSURL(), "reason": "direct route"}, &v))
	require.Equal(t, idC, v.Registry)
	require.Equal(t, "pending", v.Status)
	require.Equal(t, "pending", peerStatusOn(t, c, idA), "C recorded A's request")
	require.Equal(t, 422, cA.call("POST", "/api/v1/admin/federation/peers/"+idC+"/accept", adminA, map[string]any{"reason": "r"}, nil),
		"A has accepted already; C has not")
	require.Equal(t, 400, l.c0.call("POST", "/api/v1/admin/federation/peers/"+idA+"/accept", l.admin, map[string]any{}, nil), "a reason is required")
	require.Equal(t, "pending", peerStatusOn(t, c, idA))

	// C's admin accepts: active on both sides.
	require.Equal(t, 200, l.c0.call("POST", "/api/v1/admin/federation/peers/"+idA+"/accept", l.admin, map[string]any{"reason": "welcome"}, &v))
	require.Equal(t, "active", v.Status)
	require.Equal(t, "active", peerStatusOn(t, a, idC), "C told A")
	require.Equal(t, 422, l.c0.call("POST", "/api/v1/admin/federation/peers/"+idA+"/accept", l.admin, map[string]any{"reason": "again"}, nil))
	require.Equal(t, []string{">pending " + adminSubject(t, a), "pending>active peer:" + idC}, statusEvents(t, a, idC))
	require.Equal(t, []string{">pending peer:" + idA, "pending>active " + adminSubject(t, c)}, statusEvents(t, c, idA))

	// C's cards now reach A directly.
	did2, _ := l.register("courier")
	l.waitCard(a, did2, func(cs []federation.CardView) bool { return len(cs) == 1 && cs[0].Hops == 1 && cs[0].Via == idC }, "C's card reaches A directly")

	// B auto-accepts: A's re-request after the link was removed on both
	// sides is active at once.
	for _, side := range []struct {
		n    *node.Node
		peer string
	}{{a, idB}, {b, idA}} {
		require.NoError(t, side.n.Peers.Remove(ctx, spiffeTEG(side.n, side.peer), time.Now()))
	}
	require.Equal(t, 201, cA.call("POST", "/api/v1/admin/federation/peers", adminA, map[string]any{"base_url": b.MTLSURL(), "reason": "again"}, &v))
	require.Equal(t, "active", v.Status, "B's policy accepted at once")
	require.Equal(t, "active", peerStatusOn(t, b, idA))
	require.Contains(t, statusEvents(t, b, idA), "removed>active policy:auto-accept (asked by "+idA+")")

	// A revoked peer asking again is refused, and stays revoked.
	_, _, err := registrystore.NewPeers(c.Pools[db.RoleRegistry]).SetStatus(ctx, registrystore.PeerChange{SpiffeID: spiffeTEG(c, idA).String(),
		From: []string{"active"}, To: "revoked", By: "test", Reason: "withdrawn", Now: time.Now()}, nil)
	require.NoError(t, err)
	require.NoError(t, a.Peers.Remove(ctx, spiffeTEG(a, idC), time.Now()))
	require.Equal(t, 422, cA.call("POST", "/api/v1/admin/federation/peers", adminA, map[string]any{"base_url": c.MTLSURL(), "reason": "please"}, nil))
	require.Equal(t, "revoked", peerStatusOn(t, c, idA))
}

func spiffeTEG(n *node.Node, registry string) spiffeid.ID {
	return spiffeid.RequireFromSegments(n.CardSync().TrustDomain, "teg", registry)
}

// adminSubject is the subject of n's dev admin client's tokens.
func adminSubject(t *testing.T, n *node.Node) string {
	t.Helper()
	var subj string
	require.NoError(t, n.Pools[db.RoleRegistry].QueryRow(context.Background(), `SELECT envelope->'payload'->>'by' FROM outbox
		WHERE envelope->>'type' = $1 AND envelope->'payload'->>'by' NOT LIKE 'peer:%' AND envelope->'payload'->>'by' NOT LIKE 'policy:%'
		AND envelope->'payload'->>'by' <> 'test' LIMIT 1`, events.TypeFederationPeerStatusChanged).Scan(&subj))
	require.NotEmpty(t, subj)
	return subj
}
