package sim

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"

	"github.com/google/uuid"
)

func init() {
	RegisterOp(Op{Name: "transfer", Run: opTransfer})
	RegisterOp(Op{Name: "xfer", Run: opXfer})
	RegisterOp(Op{Name: "hold", Run: opHold})
	RegisterOp(Op{Name: "stake", Run: opStake})
	RegisterOp(Op{Name: "unstake", Run: opUnstake})
}

// amount is 0.01 to 10 tokens.
func amount(r *rand.Rand) int64 { return (1 + r.Int64N(1000)) * unitsPerToken / 100 }

// outcome turns a non-success answer into the operation's error.
func outcome(what string, c call) error {
	if !c.definitive() {
		return fmt.Errorf("%s: %w (last answer %d %s)", what, errIndefinite, c.Status, c.Code)
	}
	return c.err(what)
}

type transferDTO struct {
	ID          uuid.UUID `json:"id"`
	Status      string    `json:"status"` // cross-registry only
	From        string    `json:"from"`
	To          string    `json:"to"`
	AmountUnits int64     `json:"amount_units"`
	FeeUnits    int64     `json:"fee_units"`
	NetUnits    int64     `json:"net_units"`
	Reason      string    `json:"reason"`
}

// pair picks a sender and another agent of the same registry.
func (s *Sim) pair(r *rand.Rand) (*Account, *Account, bool) {
	if len(s.senders) == 0 {
		return nil, nil, false
	}
	from := s.senders[r.IntN(len(s.senders))]
	peers := s.agents[from.Registry]
	if len(peers) < 2 {
		return nil, nil, false
	}
	for {
		to := peers[r.IntN(len(peers))]
		if to != from {
			return from, to, true
		}
	}
}

func (s *Sim) api(a *Account) string { return s.reg(a.Registry).APIURL + "/api/v1" }

// opTransfer pays another agent of the same registry (201, committed).
func opTransfer(ctx context.Context, s *Sim, r *rand.Rand) error {
	from, to, ok := s.pair(r)
	if !ok {
		return ErrSkip
	}
	key := idemKey()
	c := s.cl.do(ctx, "transfer", http.MethodPost, s.api(from)+"/transfers", from.Token, key,
		map[string]any{"to": to.ID, "amount_units": amount(r)})
	if c.Status != http.StatusCreated {
		return s.maybeLater("transfer", outcome("transfer", c), func(ctx context.Context, ck *checker) error {
			return ck.resolveTransfer(ctx, from, to, key)
		})
	}
	var t transferDTO
	if err := c.decode(&t); err != nil {
		return err
	}
	s.model.transfer(ackedTransfer{ID: t.ID, Registry: from.Registry, From: from.ID, To: to.ID, Amount: t.AmountUnits, Fee: t.FeeUnits, Net: t.NetUnits}, from, to)
	return nil
}

// opXfer pays a receiver on another registry of the sender's frame (202;
// the settlement saga decides it, read at the end).
func opXfer(ctx context.Context, s *Sim, r *rand.Rand) error {
	if len(s.crossFrom) == 0 {
		return ErrSkip
	}
	from := s.crossFrom[r.IntN(len(s.crossFrom))]
	var targets []*Account
	for reg, list := range s.receivers {
		if reg != from.Registry && s.reg(reg).Frame == from.Frame {
			targets = append(targets, list...)
		}
	}
	if len(targets) == 0 {
		return ErrSkip
	}
	to := targets[r.IntN(len(targets))]
	key := idemKey()
	c := s.cl.do(ctx, "xfer", http.MethodPost, s.api(from)+"/transfers", from.Token, key,
		map[string]any{"to": to.ID, "amount_units": amount(r)})
	if c.Status != http.StatusAccepted {
		return s.maybeLater("xfer", outcome("xfer", c), func(ctx context.Context, ck *checker) error {
			return ck.resolveXfer(ctx, from, to, key)
		})
	}
	var t transferDTO
	if err := c.decode(&t); err != nil {
		return err
	}
	s.model.xfer(&ackedXfer{ID: t.ID, Frame: from.Frame, Source: from.Registry, Target: to.Registry, From: from, To: to, Amount: t.AmountUnits, Fee: t.FeeUnits})
	return nil
}

// opHold places a hold for another agent, then posts it (the transfer
// happens) or voids it (nothing moves), half and half.
func opHold(ctx context.Context, s *Sim, r *rand.Rand) error {
	from, to, ok := s.pair(r)
	if !ok {
		return ErrSkip
	}
	key := idemKey()
	c := s.cl.do(ctx, "hold", http.MethodPost, s.api(from)+"/holds", from.Token, key,
		map[string]any{"to": to.ID, "amount_units": amount(r)})
	if c.Status != http.StatusCreated {
		return s.maybeLater("hold", outcome("hold", c), func(ctx context.Context, ck *checker) error {
			return ck.resolveHold(ctx, from, to, uuid.Nil, key)
		})
	}
	var h struct {
		ID uuid.UUID `json:"id"`
	}
	if err := c.decode(&h); err != nil {
		return err
	}
	url := s.api(from) + "/holds/" + h.ID.String()
	if r.IntN(2) == 0 {
		c = s.cl.do(ctx, "hold.void", http.MethodPost, url+"/void", from.Token, idemKey(), nil)
		if c.Status != http.StatusOK {
			return s.maybeLater("hold", outcome("hold void", c), func(ctx context.Context, ck *checker) error {
				return ck.resolveHold(ctx, from, to, h.ID, "")
			})
		}
		return nil
	}
	c = s.cl.do(ctx, "hold.post", http.MethodPost, url+"/post", from.Token, idemKey(), nil)
	if c.Status != http.StatusOK {
		return s.maybeLater("hold", outcome("hold post", c), func(ctx context.Context, ck *checker) error {
			return ck.resolveHold(ctx, from, to, h.ID, "")
		})
	}
	var p struct {
		Transfer transferDTO `json:"transfer"`
	}
	if err := c.decode(&p); err != nil {
		return err
	}
	t := p.Transfer
	s.model.transfer(ackedTransfer{ID: t.ID, Registry: from.Registry, From: from.ID, To: to.ID, Amount: t.AmountUnits, Fee: t.FeeUnits, Net: t.NetUnits}, from, to)
	return nil
}

// maybeLater returns err; when it leaves the outcome unknown, resolve runs
// at the end of the run, once the system is quiet.
func (s *Sim) maybeLater(kind string, err error, resolve func(ctx context.Context, ck *checker) error) error {
	if errors.Is(err, errIndefinite) {
		s.model.resolveLater(kind, resolve)
	}
	return err
}

// opStake stakes 10 to 20 tokens in the flexible tier.
func opStake(ctx context.Context, s *Sim, r *rand.Rand) error {
	if len(s.senders) == 0 {
		return ErrSkip
	}
	a := s.senders[r.IntN(len(s.senders))]
	units := (10 + r.Int64N(11)) * unitsPerToken
	key := idemKey()
	c := s.cl.do(ctx, "stake", http.MethodPost, s.api(a)+"/staking/stake", a.Token, key,
		map[string]any{"tier": "flexible", "amount_units": units})
	if c.Status != http.StatusCreated {
		return s.maybeLater("stake", outcome("stake", c), func(ctx context.Context, ck *checker) error {
			return ck.resolveStake(ctx, a, key)
		})
	}
	var p struct {
		ID             int64 `json:"id"`
		PrincipalUnits int64 `json:"principal_units"`
	}
	if err := c.decode(&p); err != nil {
		return err
	}
	s.model.stake(a, ackedStake{Registry: a.Registry, Position: p.ID, Owner: a.ID, Amount: p.PrincipalUnits})
	a.mu.Lock()
	a.positions = append(a.positions, p.ID)
	a.mu.Unlock()
	return nil
}

// opUnstake asks to unstake one of an agent's flexible positions: the
// position enters its cooldown (202) and its money stays staked until the
// cooldown's workflow releases it, days later.
func opUnstake(ctx context.Context, s *Sim, r *rand.Rand) error {
	if len(s.senders) == 0 {
		return ErrSkip
	}
	a := s.senders[r.IntN(len(s.senders))]
	a.mu.Lock()
	if len(a.positions) == 0 {
		a.mu.Unlock()
		return ErrSkip
	}
	i := r.IntN(len(a.positions))
	pos := a.positions[i]
	a.positions = append(a.positions[:i], a.positions[i+1:]...)
	a.mu.Unlock()
	c := s.cl.do(ctx, "unstake", http.MethodPost, s.api(a)+"/staking/positions/"+strconv.FormatInt(pos, 10)+"/unstake", a.Token, idemKey(), nil)
	if c.Status != http.StatusOK && c.Status != http.StatusAccepted {
		return s.maybeLater("unstake", outcome("unstake", c), func(ctx context.Context, ck *checker) error {
			return ck.resolveUnstake(ctx, a, pos)
		})
	}
	var u struct {
		Position struct {
			Status         string `json:"status"`
			PrincipalUnits int64  `json:"principal_units"`
		} `json:"position"`
	}
	if err := c.decode(&u); err != nil {
		return err
	}
	if u.Position.Status == "closed" {
		s.model.unstaked(a, u.Position.PrincipalUnits)
	}
	return nil
}
