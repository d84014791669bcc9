package ledgerstore_test

import (
	"context"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/dispute"
	"github.com/theprotocol-dev/theprotocol/recon"
)

// disputeSetup: a pays b 100 AVT; returns the transfer.
func disputeSetup(t *testing.T, e *env) (a, b string, tr ledgerstore.Transfer) {
	t.Helper()
	a, b = e.agent(1000*avt), e.agent(10*avt)
	tr, err := e.store.Transfer(e.ctx, ledgerstore.TransferRequest{From: a, To: b, AmountUnits: 100 * avt, IdempotencyKey: "pay"})
	require.NoError(t, err)
	return a, b, tr
}

func openReq(complainant string, tr uuid.UUID, claim int64, key string) ledgerstore.OpenDisputeRequest {
	return ledgerstore.OpenDisputeRequest{Complainant: complainant, TransferID: tr, ClaimedUnits: claim,
		EvidenceRef: "https://evidence.example/1", IdempotencyKey: key, Rules: dispute.DefaultRules}
}

func (e *env) disputeEvents(id uuid.UUID) map[string]int {
	e.t.Helper()
	rows, err := e.pool.Query(e.ctx, `SELECT event_type, count(*) FROM outbox WHERE idempotency_key LIKE $1 GROUP BY 1`, "dispute-"+id.String()+"-%")
	require.NoError(e.t, err)
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var typ string
		var n int
		require.NoError(e.t, rows.Scan(&typ, &n))
		out[typ] = n
	}
	return out
}

// Every refused opening is a clear code and writes nothing.
func TestOpenDisputeRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	a, b, tr := disputeSetup(t, e)
	stranger := e.agent(0)
	_, err := e.store.OpenDispute(e.ctx, openReq(a, tr.ID, 50*avt, "first"))
	require.NoError(t, err)
	before := e.snapshot()
	disputes := e.count(`SELECT count(*) FROM disputes`)
	for _, c := range []struct {
		name string
		req  ledgerstore.OpenDisputeRequest
		code apperr.Code
	}{
		{"others' transfer", openReq(stranger, tr.ID, avt, "k1"), apperr.Forbidden},
		{"twice by the same party", openReq(a, tr.ID, avt, "k2"), apperr.Conflict},
		{"more than the transfer", openReq(b, tr.ID, 100*avt+1, "k3"), apperr.Invalid},
		{"unknown transfer", openReq(b, uuid.New(), avt, "k4"), apperr.NotFound},
		{"zero claim", openReq(b, tr.ID, 0, "k5"), apperr.Invalid},
		{"no evidence", func() ledgerstore.OpenDisputeRequest { r := openReq(b, tr.ID, avt, "k6"); r.EvidenceRef = ""; return r }(), apperr.Invalid},
		{"developer complainant", openReq("dev:someone", tr.ID, avt, "k7"), apperr.Invalid},
		{"key reused for another dispute", openReq(a, tr.ID, 40*avt, "first"), apperr.IdempotencyReuse},
	} {
		_, err := e.store.OpenDispute(e.ctx, c.req)
		require.Equal(t, c.code, apperr.CodeOf(err), "%s: %v", c.name, err)
	}
	// A cross-registry leg (a transit account on one side).
	leg := uuid.New()
	_, err = e.pool.Exec(e.ctx, `INSERT INTO transfers (id, sender, receiver, amount_units, fee_units, fee_bps, client_key, created_at)
		VALUES ($1, 'transit:alpha-op1', $2, 100, 0, 0, 'leg', $3)`, leg, a, e.clock.Now())
	require.NoError(t, err)
	_, err = e.store.OpenDispute(e.ctx, openReq(a, leg, 50, "leg"))
	require.Equal(t, apperr.FailedPrecondition, apperr.CodeOf(err), "%v", err)
	_, err = e.pool.Exec(e.ctx, `DELETE FROM transfers WHERE id = $1`, leg)
	require.NoError(t, err)

	// After the window.
	e.clock.Advance(dispute.DefaultRules.OpenWindow)
	_, err = e.store.OpenDispute(e.ctx, openReq(b, tr.ID, avt, "late"))
	require.Equal(t, apperr.FailedPrecondition, apperr.CodeOf(err), "%v", err)
	require.Equal(t, before, e.snapshot(), "a refused dispute writes nothing")
	require.Equal(t, disputes, e.count(`SELECT count(*) FROM disputes`))

	// A non-mainframe TEG hears no disputes.
	op := newEnv(t, envOpts{notMainframe: true})
	_, err = op.store.OpenDispute(op.ctx, openReq(a, tr.ID, avt, "k"))
	require.Equal(t, apperr.FailedPrecondition, apperr.CodeOf(err))
}

// Open → respond → rule for the complainant → settle: compensation minted
// once, events once each, the ledger's invariants hold.
func TestDisputeRuledForComplainant(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	a, b, tr := disputeSetup(t, e)
	d, err := e.store.OpenDispute(e.ctx, openReq(a, tr.ID, 60*avt, "open"))
	require.NoError(t, err)
	require.Equal(t, b, d.Respondent)
	require.Equal(t, dispute.AwaitingResponse, d.Status)
	require.Equal(t, e.clock.Now().UTC().Add(dispute.DefaultRules.ResponseWindow), d.RespondBy)
	require.Equal(t, 3*avt, d.FeeDueUnits, "5% of 60 AVT")

	again, err := e.store.OpenDispute(e.ctx, openReq(a, tr.ID, 60*avt, "open"))
	require.NoError(t, err)
	require.True(t, again.Replayed)
	require.Equal(t, d.ID, again.ID)

	_, err = e.store.RespondDispute(e.ctx, d.ID, a, "https://evidence.example/answer")
	require.Equal(t, apperr.Forbidden, apperr.CodeOf(err), "the complainant does not answer")
	_, err = e.store.RespondDispute(e.ctx, d.ID, e.agent(0), "x")
	require.Equal(t, apperr.NotFound, apperr.CodeOf(err))
	r, err := e.store.RespondDispute(e.ctx, d.ID, b, "https://evidence.example/answer")
	require.NoError(t, err)
	require.Equal(t, dispute.AwaitingRuling, r.Status)

	_, err = e.store.RuleDispute(e.ctx, ledgerstore.RulingRequest{DisputeID: d.ID, Outcome: dispute.ForComplainant, AwardUnits: 61 * avt, Reason: "r", Actor: "admin:t"})
	require.Equal(t, apperr.Invalid, apperr.CodeOf(err), "award above the claim")
	ruled, err := e.store.RuleDispute(e.ctx, ledgerstore.RulingRequest{DisputeID: d.ID, Outcome: dispute.ForComplainant, AwardUnits: 40 * avt, Reason: "goods not delivered", Actor: "admin:t"})
	require.NoError(t, err)
	require.Equal(t, dispute.Ruled, ruled.Status)
	require.Equal(t, b, ruled.Loser())
	_, err = e.store.RuleDispute(e.ctx, ledgerstore.RulingRequest{DisputeID: d.ID, Outcome: dispute.ForRespondent, Reason: "r", Actor: "admin:t"})
	require.Equal(t, apperr.Conflict, apperr.CodeOf(err), "a second, different ruling")

	before, _ := e.balance(a)
	s1, err := e.store.SettleDispute(e.ctx, d.ID)
	require.NoError(t, err)
	require.Equal(t, 40*avt, s1.CompensationUnits)
	s2, err := e.store.SettleDispute(e.ctx, d.ID)
	require.NoError(t, err)
	require.True(t, s2.Replayed)
	after, _ := e.balance(a)
	require.Equal(t, before+40*avt, after, "compensation minted once")
	require.Equal(t, map[string]int{
		ledgerstore.EventDisputeOpened: 1, ledgerstore.EventDisputeResponded: 1, ledgerstore.EventDisputeRuled: 1,
		ledgerstore.EventDisputeCompensationMinted: 1,
	}, e.disputeEvents(d.ID))
	sup, err := e.store.Supply(e.ctx)
	require.NoError(t, err)
	require.Equal(t, 40*avt, sup.CompensationUnits)
	e.checkInvariants()
}

// A ruling for the respondent charges the fee to the treasury, capped by
// what the complainant has.
func TestDisputeRuledForRespondentChargesFee(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	a, b, tr := disputeSetup(t, e)
	// b (the receiver) complains, claims 100 AVT: fee due 5 AVT, but b has
	// 10 + 99.5 AVT; drain b to 2 AVT first.
	d, err := e.store.OpenDispute(e.ctx, openReq(b, tr.ID, 100*avt, "open"))
	require.NoError(t, err)
	require.Equal(t, a, d.Respondent)
	bal, _ := e.balance(b)
	_, err = e.store.Transfer(e.ctx, ledgerstore.TransferRequest{From: b, To: a, AmountUnits: bal - 2*avt, IdempotencyKey: "drain"})
	require.NoError(t, err)
	_, err = e.store.RuleDispute(e.ctx, ledgerstore.RulingRequest{DisputeID: d.ID, Outcome: dispute.ForRespondent, AwardUnits: 1, Reason: "r", Actor: "admin:t"})
	require.Equal(t, apperr.Invalid, apperr.CodeOf(err), "no award for the respondent")
	_, err = e.store.RuleDispute(e.ctx, ledgerstore.RulingRequest{DisputeID: d.ID, Outcome: dispute.ForRespondent, Reason: "frivolous", Actor: "admin:t"})
	require.NoError(t, err)
	treasury, _ := e.balance("treasury")
	s, err := e.store.SettleDispute(e.ctx, d.ID)
	require.NoError(t, err)
	require.Equal(t, 2*avt, s.FeeUnits, "capped by the available balance")
	require.Zero(t, s.CompensationUnits)
	t2, _ := e.balance("treasury")
	require.Equal(t, treasury+2*avt, t2, "the fee goes to the treasury")
	left, _ := e.balance(b)
	require.Zero(t, left)
	_, err = e.store.SettleDispute(e.ctx, d.ID)
	require.NoError(t, err)
	t3, _ := e.balance("treasury")
	require.Equal(t, t2, t3, "charged once")
	require.Equal(t, 1, e.disputeEvents(d.ID)[ledgerstore.EventDisputeFeeCharged])
	e.checkInvariants()
}

// The deadline steps: the response deadline defaults the respondent, the
// ruling deadline lapses the dispute; neither runs early, and a ruling or
// response after its deadline is refused.
func TestDisputeDeadlines(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	a, b, tr := disputeSetup(t, e)
	d, err := e.store.OpenDispute(e.ctx, openReq(a, tr.ID, avt, "open"))
	require.NoError(t, err)
	_, err = e.store.CloseDisputeResponse(e.ctx, d.ID)
	require.Equal(t, apperr.Unavailable, apperr.CodeOf(err), "not due yet")
	e.clock.Advance(dispute.DefaultRules.ResponseWindow)
	_, err = e.store.RespondDispute(e.ctx, d.ID, b, "late")
	require.Equal(t, apperr.FailedPrecondition, apperr.CodeOf(err))
	st, err := e.store.CloseDisputeResponse(e.ctx, d.ID)
	require.NoError(t, err)
	require.Equal(t, dispute.State{DisputeID: d.ID.String(), Status: dispute.AwaitingRuling, Defaulted: true}, st)
	_, err = e.store.CloseDisputeResponse(e.ctx, d.ID)
	require.NoError(t, err)

	_, err = e.store.LapseDispute(e.ctx, d.ID)
	require.Equal(t, apperr.Unavailable, apperr.CodeOf(err), "not due yet")
	e.clock.Advance(dispute.DefaultRules.RulingWindow)
	_, err = e.store.RuleDispute(e.ctx, ledgerstore.RulingRequest{DisputeID: d.ID, Outcome: dispute.ForComplainant, Reason: "r", Actor: "admin:t"})
	require.Equal(t, apperr.FailedPrecondition, apperr.CodeOf(err), "ruling window closed")
	st, err = e.store.LapseDispute(e.ctx, d.ID)
	require.NoError(t, err)
	require.Equal(t, dispute.Lapsed, st.Status)
	set, err := e.store.SettleDispute(e.ctx, d.ID)
	require.NoError(t, err)
	require.Equal(t, dispute.Settlement{DisputeID: d.ID.String(), Status: dispute.Lapsed}, set, "a lapsed dispute has nothing to settle")
	require.Equal(t, map[string]int{
		ledgerstore.EventDisputeOpened: 1, ledgerstore.EventDisputeResponseMissed: 1, ledgerstore.EventDisputeLapsed: 1,
	}, e.disputeEvents(d.ID))
	e.checkInvariants()
}

// Compensation is a mint: it waits while the supply audit is not clean.
func TestDisputeCompensationWaitsForCleanAudit(t *testing.T) {
	t.Parallel()
	gate := &switchGate{}
	e := newEnv(t, envOpts{gate: gate})
	a, _, tr := disputeSetup(t, e)
	d, err := e.store.OpenDispute(e.ctx, openReq(a, tr.ID, avt, "open"))
	require.NoError(t, err)
	_, err = e.store.RuleDispute(e.ctx, ledgerstore.RulingRequest{DisputeID: d.ID, Outcome: dispute.ForComplainant, Reason: "r", Actor: "admin:t"})
	require.NoError(t, err)
	gate.v = recon.Verdict{Delta: 1}
	_, err = e.store.SettleDispute(e.ctx, d.ID)
	require.Equal(t, apperr.Unavailable, apperr.CodeOf(err), "retryable: it waits")
	require.Zero(t, e.disputeEvents(d.ID)[ledgerstore.EventDisputeCompensationMinted])
	gate.v = recon.Verdict{}
	s, err := e.store.SettleDispute(e.ctx, d.ID)
	require.NoError(t, err)
	require.Equal(t, avt, s.CompensationUnits)
}

// switchGate answers the verdict a test sets.
type switchGate struct{ v recon.Verdict }

func (g *switchGate) SupplyVerdict(context.Context) (recon.Verdict, error) { return g.v, nil }

// Settlements racing each other (a retried activity beside a duplicate
// workflow) mint the compensation once.
func TestDisputeConcurrentSettlementsMintOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	a, _, tr := disputeSetup(t, e)
	d, err := e.store.OpenDispute(e.ctx, openReq(a, tr.ID, 30*avt, "open"))
	require.NoError(t, err)
	_, err = e.store.RuleDispute(e.ctx, ledgerstore.RulingRequest{DisputeID: d.ID, Outcome: dispute.ForComplainant, Reason: "r", Actor: "admin:t"})
	require.NoError(t, err)
	before, _ := e.balance(a)
	var wg sync.WaitGroup
	replays := make(chan bool, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := e.store.SettleDispute(e.ctx, d.ID)
			assert.NoError(t, err)
			assert.Equal(t, 30*avt, s.CompensationUnits)
			replays <- s.Replayed
		}()
	}
	wg.Wait()
	close(replays)
	fresh := 0
	for r := range replays {
		if !r {
			fresh++
		}
	}
	require.Equal(t, 1, fresh, "one settlement applied, the others replayed")
	after, _ := e.balance(a)
	require.Equal(t, before+30*avt, after)
	require.Equal(t, 1, e.disputeEvents(d.ID)[ledgerstore.EventDisputeCompensationMinted])
	e.checkInvariants()
}
