// Package stakes runs the staking flows that span the ledger and the
// workflow engine: a stake in a locked tier gets the workflow that ends
// its lock, and a flexible unstake the workflow that ends its cooldown.
// The ledger write commits first and is idempotent (per position, or per
// Idempotency-Key for a stake), so a workflow that cannot be started is
// answered Unavailable and started by the client's retry; the daily reward
// run also marks any lock expiry still unrecorded. The rules themselves
// (tiers, curve, rewards) are in package staking; the ledger API calls a
// Service and the node wires it.
package stakes

import (
	"context"

	"go.temporal.io/sdk/client"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/staking"
	"github.com/theprotocol-dev/theprotocol/worker"
	"github.com/theprotocol-dev/theprotocol/workflows"
)

// Ledger is the TEG as the staking flows write it. *ledgerstore.Store
// implements it.
type Ledger interface {
	Stake(ctx context.Context, req ledgerstore.StakeRequest) (ledgerstore.Position, error)
	Unstake(ctx context.Context, owner string, id int64) (ledgerstore.UnstakeResult, error)
}

// Service runs the staking flows; every field is required.
type Service struct {
	Ledger Ledger
	// Registry names the TEG whose positions these are (workflow IDs carry
	// it). Temporal starts the workflows on TaskQueue (the registry's).
	Registry  string
	Temporal  client.Client
	TaskQueue string
}

// Stake records the stake (see ledgerstore.Store.Stake for its errors)
// and, for a locked position, starts its lock-expiry workflow. If that
// cannot be started the error is Unavailable and the position stays
// recorded: a retry with the same idempotency key replays the stake and
// starts the workflow.
func (s *Service) Stake(ctx context.Context, req ledgerstore.StakeRequest) (ledgerstore.Position, error) {
	p, err := s.Ledger.Stake(ctx, req)
	if err != nil {
		return p, err
	}
	if p.UnlockAt != nil && p.Status == staking.PositionActive && p.MaturedAt == nil {
		err := s.startOnce(ctx, workflows.LockExpiryWorkflowID(s.Registry, p.ID), workflows.LockExpiryName,
			workflows.LockExpiryInput{PositionID: p.ID, UnlockAt: *p.UnlockAt})
		if err != nil {
			return p, apperr.Wrap(err, apperr.Unavailable, "the stake is recorded as position %d but its lock expiry could not be scheduled; retry with the same Idempotency-Key", p.ID)
		}
	}
	return p, nil
}

// Unstake unstakes position id for owner (see ledgerstore.Store.Unstake)
// and, when that opened a cooldown, starts its workflow. If that cannot be
// started the error is Unavailable: a retry finds the pending request and
// starts it again.
func (s *Service) Unstake(ctx context.Context, owner string, id int64) (ledgerstore.UnstakeResult, error) {
	res, err := s.Ledger.Unstake(ctx, owner, id)
	if err != nil {
		return res, err
	}
	if r := res.Request; r != nil && r.Status == staking.UnstakePending {
		err := s.startOnce(ctx, workflows.UnstakeCooldownWorkflowID(s.Registry, id), workflows.UnstakeCooldownName,
			workflows.UnstakeCooldownInput{PositionID: id, ReleaseAt: r.ReleasesAt})
		if err != nil {
			return res, apperr.Wrap(err, apperr.Unavailable, "the unstake is recorded but its cooldown could not be scheduled; retry")
		}
	}
	return res, nil
}

func (s *Service) startOnce(ctx context.Context, id, name string, arg any) error {
	return worker.StartOnce(ctx, s.Temporal, s.TaskQueue, id, name, arg)
}
