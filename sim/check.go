package sim

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/theprotocol-dev/theprotocol/ingest"
)

// Check waits for quiescence, then compares everything the system
// acknowledged with what it shows. It returns the differences (none: every
// invariant is exactly zero). It can be called again after a run.
func (s *Sim) Check(ctx context.Context) []string {
	ck := &checker{s: s, deadline: time.Now().Add(s.cfg.SettleTimeout)}
	ck.resolveDoubts(ctx)
	s.model.mu.Lock()
	ck.diffs = append(ck.diffs, s.model.diffs...)
	for _, kind := range sortedKeys(s.model.doubt) {
		ck.differ("%d %s operation(s) never got a definitive answer (e.g. %s)", s.model.doubt[kind], kind, s.model.doubtEx[kind])
	}
	s.model.mu.Unlock()
	ck.resolveXfers(ctx)
	ck.settle(ctx)
	ck.balances(ctx)
	ck.transfersOnce(ctx)
	ck.eventsOnce(ctx)
	return ck.diffs
}

type checker struct {
	s        *Sim
	deadline time.Time
	diffs    []string
	// per frame: the reports read once settled
	audits map[string]auditReport
	recons map[string]reconReport
}

const maxDiffsPerCheck = 30

func (ck *checker) differ(format string, args ...any) {
	ck.diffs = append(ck.diffs, fmt.Sprintf(format, args...))
}

// get reads a JSON document (admin token of registry tokenOf, or none).
func (ck *checker) get(ctx context.Context, base, path, token string, out any) error {
	c := ck.s.setup.do(ctx, "check", http.MethodGet, base+"/api/v1"+path, token, "", nil)
	if c.Status != http.StatusOK {
		return c.err("GET " + path)
	}
	return c.decode(out)
}

// resolveXfers waits until every accepted cross-registry transfer is
// committed or aborted and applies the outcome to the model.
func (ck *checker) resolveXfers(ctx context.Context) {
	s := ck.s
	s.model.mu.Lock()
	xs := slices.Clone(s.model.xfers)
	s.model.mu.Unlock()
	for _, x := range xs {
		if x.Resolved {
			continue
		}
		for {
			var t transferDTO
			err := ck.get(ctx, s.reg(x.Source).APIURL, "/transfers/"+x.ID.String(), s.admins[x.Source], &t)
			if err == nil && (t.Status == "committed" || t.Status == "aborted") {
				x.Status, x.Reason, x.CommittedNet, x.Resolved = t.Status, t.Reason, t.NetUnits, true
				s.model.settle(x)
				break
			}
			if time.Now().After(ck.deadline) || ctx.Err() != nil {
				ck.differ("cross-registry transfer %s (%s → %s) not settled: status %q, err %v", x.ID, x.Source, x.Target, t.Status, err)
				break
			}
			sleep(ctx, 250*time.Millisecond)
		}
	}
}

type checkpoint struct {
	CoversSeq int64     `json:"covers_seq"`
	TakenAt   time.Time `json:"taken_at"`
}

type auditReport struct {
	Delta    int64    `json:"delta"`
	Failures []string `json:"failures"`
	OK       bool     `json:"ok"`
}

type reconReport struct {
	PassedAt   *time.Time `json:"passed_at"`
	Registries []struct {
		Registry    string     `json:"registry"`
		CoversSeq   *int64     `json:"covers_seq"`
		EvaluatedAt *time.Time `json:"evaluated_at"`
		Differences []struct {
			Term      string `json:"term"`
			Expected  int64  `json:"expected_units"`
			Projected int64  `json:"projected_units"`
			Delta     int64  `json:"delta_units"`
		} `json:"differences"`
		DeltaUnits  int64 `json:"delta_units"`
		MissingSeqs int64 `json:"missing_seqs"`
	} `json:"registries"`
	Netting []struct {
		A     string `json:"registry_a"`
		B     string `json:"registry_b"`
		Delta int64  `json:"delta_units"`
	} `json:"netting"`
	Failures []string `json:"failures"`
}

type sourcesReport struct {
	Sources []struct {
		Registry string `json:"registry"`
		Source   string `json:"source"`
		HWM      int64  `json:"hwm"`
		MaxSeen  int64  `json:"max_seen"`
		Pending  int    `json:"pending"`
	} `json:"sources"`
}

// settle writes a balance checkpoint on every TEG, waits until each
// frame's EventStore has ingested everything and its reconciler compared
// those checkpoints, then checks the supply audit and the reconciliation.
func (ck *checker) settle(ctx context.Context) {
	s := ck.s
	ck.audits, ck.recons = map[string]auditReport{}, map[string]reconReport{}
	cps := map[string]checkpoint{}
	for _, r := range s.cfg.Target.Registries {
		if !r.HasRole("teg") || s.admins[r.ID] == "" {
			continue
		}
		c := s.setup.do(ctx, "check", http.MethodPost, r.APIURL+"/api/v1/admin/checkpoints", s.admins[r.ID], idemKey(), nil)
		var cp checkpoint
		if c.Status != http.StatusCreated || c.decode(&cp) != nil {
			ck.differ("checkpoint on %s: %v", r.ID, c.err("POST /admin/checkpoints"))
			continue
		}
		cps[r.ID] = cp
	}
	for _, frame := range s.cfg.Target.frames() {
		es, ok := s.cfg.Target.eventStore(frame)
		if !ok {
			ck.differ("frame %s: no node serves its EventStore", frame)
			continue
		}
		var rec reconReport
		var src sourcesReport
		var why string
		for {
			why = ""
			if err := ck.get(ctx, es.APIURL, "/projections/sources", "", &src); err != nil {
				why = err.Error()
			}
			for _, p := range src.Sources {
				if why == "" && (p.Pending != 0 || p.HWM != p.MaxSeen) {
					why = fmt.Sprintf("source %s/%s: high-water mark %d, seen %d, %d pending", p.Registry, p.Source, p.HWM, p.MaxSeen, p.Pending)
				}
			}
			if err := ck.get(ctx, es.APIURL, "/projections/reconciliation", "", &rec); err != nil && why == "" {
				why = err.Error()
			}
			if why == "" {
				why = ck.compared(frame, rec, cps)
			}
			if why == "" || time.Now().After(ck.deadline) || ctx.Err() != nil {
				break
			}
			sleep(ctx, 500*time.Millisecond)
		}
		if why != "" {
			ck.differ("frame %s did not settle within %s: %s", frame, s.cfg.SettleTimeout, why)
		}
		var audit auditReport
		if err := ck.get(ctx, es.APIURL, "/projections/supply-audit", "", &audit); err != nil {
			ck.differ("frame %s supply audit: %v", frame, err)
		} else {
			if audit.Delta != 0 {
				ck.differ("frame %s supply audit: delta %d (must be 0)", frame, audit.Delta)
			}
			for _, f := range audit.Failures {
				ck.differ("frame %s supply audit failure: %s", frame, f)
			}
			if !audit.OK && audit.Delta == 0 && len(audit.Failures) == 0 {
				ck.differ("frame %s supply audit not ok", frame)
			}
		}
		for _, r := range rec.Registries {
			for _, d := range r.Differences {
				if strings.HasSuffix(d.Term, "digest") {
					ck.differ("frame %s reconciliation of %s: term %s: the balances' digests differ", frame, r.Registry, d.Term)
					continue
				}
				ck.differ("frame %s reconciliation of %s: term %s: checkpoint %d, EventStore %d (delta %d)", frame, r.Registry, d.Term, d.Expected, d.Projected, d.Delta)
			}
			if r.DeltaUnits != 0 && len(r.Differences) == 0 {
				ck.differ("frame %s reconciliation of %s: delta %d units", frame, r.Registry, r.DeltaUnits)
			}
			if r.MissingSeqs != 0 {
				ck.differ("frame %s reconciliation of %s: %d events missing from the log", frame, r.Registry, r.MissingSeqs)
			}
		}
		for _, n := range rec.Netting {
			if n.Delta != 0 {
				ck.differ("frame %s transit netting %s↔%s: delta %d units", frame, n.A, n.B, n.Delta)
			}
		}
		for _, f := range rec.Failures {
			if !slices.Contains(audit.Failures, f) {
				ck.differ("frame %s reconciliation failure: %s", frame, f)
			}
		}
		ck.audits[frame], ck.recons[frame] = audit, rec
		ck.replay(ctx, frame, es)
	}
}

// replay recomputes the frame's audit and every balance from the raw
// event log and compares them with the projections and the registries'
// checkpoints (what `theprotocol audit -replay` does).
func (ck *checker) replay(ctx context.Context, frame string, es Registry) {
	u, err := ck.s.cfg.Target.dbURL(es.Databases["eventstore"])
	if err != nil {
		ck.differ("frame %s replay: %v", frame, err)
		return
	}
	pool, err := pgxpool.New(ctx, u)
	if err != nil {
		ck.differ("frame %s replay: %v", frame, err)
		return
	}
	defer pool.Close()
	rep, err := ingest.Replay(ctx, pool, frame)
	if err != nil {
		ck.differ("frame %s replay: %v", frame, err)
		return
	}
	if rep.OK {
		return
	}
	before := len(ck.diffs)
	defer func() {
		if len(ck.diffs) == before {
			ck.differ("frame %s replay: the projections do not match the event log", frame)
		}
	}()
	if rep.Replayed.Delta != 0 {
		ck.differ("frame %s replay from the event log: delta %d", frame, rep.Replayed.Delta)
	}
	for i, m := range rep.BalanceMismatches {
		if i == maxDiffsPerCheck {
			ck.differ("frame %s replay: %d more balance mismatches", frame, len(rep.BalanceMismatches)-i)
			break
		}
		ck.differ("frame %s replay: %s/%s projected %d, the event log gives %d", frame, m.Account, m.Bucket, m.Projection, m.Replayed)
	}
	for _, r := range rep.Registries {
		for _, d := range r.Differences {
			ck.differ("frame %s replay: registry %s checkpoint %d: term %s differs from the log by %d", frame, r.Registry, r.CheckpointSeq, d.Term, d.Delta)
		}
		if r.MissingCount > 0 {
			ck.differ("frame %s replay: registry %s: %d sequence number(s) absent from the log, first %v", frame, r.Registry, r.MissingCount, r.MissingSeqs)
		}
	}
	if rep.EventRows != rep.Replayed.EventsApplied {
		ck.differ("frame %s replay: %d event rows, %d bodies replayed", frame, rep.EventRows, rep.Replayed.EventsApplied)
	}
}

// compared says what is still missing before the reconciler has compared
// frame's registries at the checkpoints just written ("" when it has).
func (ck *checker) compared(frame string, rec reconReport, cps map[string]checkpoint) string {
	for id, cp := range cps {
		if ck.s.reg(id).Frame != frame {
			continue
		}
		found := false
		for _, r := range rec.Registries {
			if r.Registry != id {
				continue
			}
			found = true
			if r.CoversSeq == nil || *r.CoversSeq < cp.CoversSeq || r.EvaluatedAt == nil || r.EvaluatedAt.Before(cp.TakenAt) {
				return fmt.Sprintf("the reconciler has not compared %s's checkpoint at %d yet", id, cp.CoversSeq)
			}
		}
		if !found {
			return fmt.Sprintf("the reconciliation does not list %s yet", id)
		}
	}
	return ""
}

type balanceDTO struct {
	Buckets []struct {
		Bucket    string `json:"bucket"`
		Units     int64  `json:"units"`
		HeldUnits int64  `json:"held_units"`
	} `json:"buckets"`
}

// balances compares every simulated account's liquid and staked buckets,
// on its TEG and in its frame's projection, with the sum of its
// acknowledged movements; no hold may be left.
func (ck *checker) balances(ctx context.Context) {
	s := ck.s
	var all []*Account
	all = append(all, s.senders...)
	for _, reg := range sortedKeys(s.receivers) {
		all = append(all, s.receivers[reg]...)
	}
	n := 0
	for _, a := range all {
		if n >= maxDiffsPerCheck {
			ck.differ("… more balance differences not listed")
			return
		}
		s.model.mu.Lock()
		want := *s.model.get(a)
		s.model.mu.Unlock()
		var b balanceDTO
		if err := ck.get(ctx, s.reg(a.Registry).APIURL, "/agents/"+a.ID+"/balance", s.admins[a.Registry], &b); err != nil {
			ck.differ("balance of %s on %s: %v", a.ID, a.Registry, err)
			n++
			continue
		}
		got := expect{}
		var held int64
		for _, bk := range b.Buckets {
			switch bk.Bucket {
			case "liquid":
				got.Liquid, held = bk.Units, bk.HeldUnits
			case "staked":
				got.Staked = bk.Units
			}
		}
		if got != want || held != 0 {
			ck.differ("TEG %s account %s: liquid %d staked %d held %d, acknowledged movements give liquid %d staked %d held 0",
				a.Registry, a.ID, got.Liquid, got.Staked, held, want.Liquid, want.Staked)
			n++
		}
		es, ok := s.cfg.Target.eventStore(a.Frame)
		if !ok {
			continue
		}
		var p struct {
			Balances []struct {
				Bucket  string `json:"bucket"`
				Balance int64  `json:"balance_units"`
			} `json:"balances"`
		}
		if err := ck.get(ctx, es.APIURL, "/admin/projections/balances?account="+url.QueryEscape(a.ID), s.admins[es.ID], &p); err != nil {
			ck.differ("projected balance of %s: %v", a.ID, err)
			n++
			continue
		}
		proj := expect{}
		for _, bk := range p.Balances {
			switch bk.Bucket {
			case "liquid":
				proj.Liquid = bk.Balance
			case "staked":
				proj.Staked = bk.Balance
			}
		}
		if proj != want {
			ck.differ("EventStore %s projection of %s: liquid %d staked %d, acknowledged movements give liquid %d staked %d",
				a.Frame, a.ID, proj.Liquid, proj.Staked, want.Liquid, want.Staked)
			n++
		}
	}
}

// transfersOnce checks every acknowledged transfer is on its TEG once,
// between the acknowledged parties, for the acknowledged amount.
func (ck *checker) transfersOnce(ctx context.Context) {
	s := ck.s
	s.model.mu.Lock()
	byReg := map[string][]ackedTransfer{}
	for _, t := range s.model.transfers {
		byReg[t.Registry] = append(byReg[t.Registry], t)
	}
	s.model.mu.Unlock()
	for _, reg := range sortedKeys(byReg) {
		list := byReg[reg]
		ids := make([]uuid.UUID, len(list))
		for i, t := range list {
			ids[i] = t.ID
		}
		type row struct {
			n           int
			from, to    string
			amount, fee int64
		}
		got := map[uuid.UUID]*row{}
		err := ck.query(ctx, s.reg(reg).Databases["teg"],
			`SELECT id, sender, receiver, amount_units, fee_units FROM transfers WHERE id = ANY($1)`, []any{ids},
			func(rows pgx.Rows) error {
				var id uuid.UUID
				var r row
				if err := rows.Scan(&id, &r.from, &r.to, &r.amount, &r.fee); err != nil {
					return err
				}
				if g := got[id]; g != nil {
					g.n++
					return nil
				}
				r.n = 1
				got[id] = &r
				return nil
			})
		if err != nil {
			ck.differ("read transfers of %s: %v", reg, err)
			continue
		}
		bad := 0
		for _, t := range list {
			g := got[t.ID]
			switch {
			case g == nil:
				ck.differ("TEG %s: acknowledged transfer %s is missing", reg, t.ID)
			case g.n != 1:
				ck.differ("TEG %s: transfer %s recorded %d times", reg, t.ID, g.n)
			case g.from != t.From || g.to != t.To || g.amount != t.Amount || g.fee != t.Fee:
				ck.differ("TEG %s: transfer %s is %s→%s %d (fee %d), acknowledged %s→%s %d (fee %d)", reg, t.ID, g.from, g.to, g.amount, g.fee, t.From, t.To, t.Amount, t.Fee)
			default:
				continue
			}
			if bad++; bad >= maxDiffsPerCheck {
				break
			}
		}
	}
}

// eventsOnce checks every acknowledged movement's event is in its frame's
// EventStore log exactly once, under the registry that made it.
func (ck *checker) eventsOnce(ctx context.Context) {
	s := ck.s
	type key struct{ registry, key string }
	want := map[string][]key{} // frame → keys
	s.model.mu.Lock()
	for _, t := range s.model.transfers {
		f := s.reg(t.Registry).Frame
		want[f] = append(want[f], key{t.Registry, "xfer-" + t.ID.String()})
	}
	for _, st := range s.model.stakes {
		f := s.reg(st.Registry).Frame
		want[f] = append(want[f], key{st.Registry, fmt.Sprintf("stake-%d", st.Position)})
	}
	for _, x := range s.model.xfers {
		if x.Status == "committed" {
			want[x.Frame] = append(want[x.Frame], key{x.Source, "xfer-" + x.ID.String() + "-debit"}, key{x.Target, "xfer-" + x.ID.String() + "-credit"})
		}
	}
	s.model.mu.Unlock()
	for _, frame := range sortedKeys(want) {
		es, ok := s.cfg.Target.eventStore(frame)
		if !ok {
			continue
		}
		keys := make([]string, 0, len(want[frame]))
		for _, k := range want[frame] {
			keys = append(keys, k.key)
		}
		got := map[key]int{}
		err := ck.query(ctx, es.Databases["eventstore"],
			`SELECT registry, idempotency_key FROM events WHERE idempotency_key = ANY($1)`, []any{keys},
			func(rows pgx.Rows) error {
				var k key
				if err := rows.Scan(&k.registry, &k.key); err != nil {
					return err
				}
				got[k]++
				return nil
			})
		if err != nil {
			ck.differ("read the EventStore log of %s: %v", frame, err)
			continue
		}
		bad := 0
		for _, k := range want[frame] {
			if n := got[k]; n != 1 {
				ck.differ("EventStore %s: event %s of %s found %d times (want exactly 1)", frame, k.key, k.registry, n)
				if bad++; bad >= maxDiffsPerCheck {
					break
				}
			}
		}
	}
}

func (ck *checker) query(ctx context.Context, dbName, sql string, args []any, each func(pgx.Rows) error) error {
	if dbName == "" {
		return fmt.Errorf("the endpoints name no database")
	}
	u, err := ck.s.cfg.Target.dbURL(dbName)
	if err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := each(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// resolveDoubts runs the resolvers of the operations whose answer never
// came. A request in flight when Postgres went away can leave its
// idempotency claim behind, and every retry then hears "still in
// progress"; the TEG's rows carry the client's key and say what happened.
func (ck *checker) resolveDoubts(ctx context.Context) {
	s := ck.s
	s.model.mu.Lock()
	rs := s.model.resolvers
	s.model.resolvers = nil
	s.model.mu.Unlock()
	for _, r := range rs {
		if err := r.fn(ctx, ck); err != nil {
			ck.differ("%s in doubt: %v", r.kind, err)
			continue
		}
		s.model.resolved(r.kind)
	}
}

// resolveTransfer: committed, the transfer counts as acknowledged; absent,
// it never happened.
func (ck *checker) resolveTransfer(ctx context.Context, from, to *Account, key string) error {
	t := ackedTransfer{Registry: from.Registry, From: from.ID}
	found := false
	err := ck.query(ctx, ck.s.reg(from.Registry).Databases["teg"],
		`SELECT id, receiver, amount_units, fee_units FROM transfers WHERE sender = $1 AND client_key = $2`, []any{from.ID, key},
		func(rows pgx.Rows) error {
			found = true
			return rows.Scan(&t.ID, &t.To, &t.Amount, &t.Fee)
		})
	if err != nil || !found {
		return err
	}
	if t.To != to.ID {
		return fmt.Errorf("transfer %s from %s went to %s, sent to %s", t.ID, from.ID, t.To, to.ID)
	}
	t.Net = t.Amount - t.Fee
	ck.s.model.transfer(t, from, to)
	return nil
}

// resolveStake: recorded, the position counts as acknowledged.
func (ck *checker) resolveStake(ctx context.Context, a *Account, key string) error {
	st := ackedStake{Registry: a.Registry, Owner: a.ID}
	found := false
	err := ck.query(ctx, ck.s.reg(a.Registry).Databases["teg"],
		`SELECT id, principal_units FROM stake_positions WHERE owner = $1 AND client_key = $2`, []any{a.ID, key},
		func(rows pgx.Rows) error {
			found = true
			return rows.Scan(&st.Position, &st.Amount)
		})
	if err != nil || !found {
		return err
	}
	ck.s.model.stake(a, st)
	return nil
}

// resolveUnstake: a position closed at once returned its principal; one in
// cooldown (or still active) moved nothing.
func (ck *checker) resolveUnstake(ctx context.Context, a *Account, pos int64) error {
	var status string
	var principal int64
	err := ck.query(ctx, ck.s.reg(a.Registry).Databases["teg"],
		`SELECT status, principal_units FROM stake_positions WHERE id = $1 AND owner = $2`, []any{pos, a.ID},
		func(rows pgx.Rows) error { return rows.Scan(&status, &principal) })
	if err == nil && status == "closed" {
		ck.s.model.unstaked(a, principal)
	}
	return err
}

// resolveXfer: accepted, the cross-registry transfer joins the ones whose
// outcome the checks read; absent, it never happened.
func (ck *checker) resolveXfer(ctx context.Context, from, to *Account, key string) error {
	x := &ackedXfer{Frame: from.Frame, Source: from.Registry, Target: to.Registry, From: from, To: to}
	found := false
	err := ck.query(ctx, ck.s.reg(from.Registry).Databases["teg"],
		`SELECT id, amount_units, fee_units FROM xfers WHERE sender = $1 AND client_key = $2`, []any{from.ID, key},
		func(rows pgx.Rows) error {
			found = true
			return rows.Scan(&x.ID, &x.Amount, &x.Fee)
		})
	if err != nil || !found {
		return err
	}
	ck.s.model.xfer(x)
	return nil
}

// resolveHold finds what became of a hold whose answer never came (by id,
// or by its creation key): posted, its transfer counts as acknowledged;
// still active, it is voided (with a new key: the old one may be stuck);
// never created, voided or expired, nothing moved.
func (ck *checker) resolveHold(ctx context.Context, from, to *Account, holdID uuid.UUID, createKey string) error {
	s := ck.s
	db := s.reg(from.Registry).Databases["teg"]
	sql := `SELECT id, status, transfer_id FROM holds WHERE id = $1`
	args := []any{holdID}
	if holdID == uuid.Nil {
		sql = `SELECT id, status, transfer_id FROM holds WHERE account_id = $1 AND client_key = $2`
		args = []any{from.ID, createKey}
	}
	var id uuid.UUID
	var status string
	var transfer *uuid.UUID
	found := false
	if err := ck.query(ctx, db, sql, args, func(rows pgx.Rows) error {
		found = true
		return rows.Scan(&id, &status, &transfer)
	}); err != nil {
		return err
	}
	switch {
	case !found || status == "voided" || status == "expired":
		return nil
	case status == "posted" && transfer != nil:
		t := ackedTransfer{ID: *transfer, Registry: from.Registry, From: from.ID}
		if err := ck.query(ctx, db, `SELECT receiver, amount_units, fee_units FROM transfers WHERE id = $1`, []any{*transfer},
			func(rows pgx.Rows) error { return rows.Scan(&t.To, &t.Amount, &t.Fee) }); err != nil {
			return err
		}
		if t.To != to.ID {
			return fmt.Errorf("hold %s was posted to %s, placed for %s", id, t.To, to.ID)
		}
		t.Net = t.Amount - t.Fee
		s.model.transfer(t, from, to)
		return nil
	case status == "active":
		c := s.setup.do(ctx, "check", http.MethodPost, s.api(from)+"/holds/"+id.String()+"/void", from.Token, idemKey(), nil)
		if c.Status != http.StatusOK {
			return c.err("void hold " + id.String())
		}
		return nil
	}
	return fmt.Errorf("hold %s: status %s", id, status)
}
