package bridge

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/workflows"
)

// DefaultWindow is how long a peer may apply an operation after it was
// accepted; past it the peer refuses it and this frame refunds.
const DefaultWindow = 30 * time.Second

// Store is what the bridge needs from the TEG (*ledgerstore.Store).
type Store interface {
	BridgeStart(ctx context.Context, r ledgerstore.BridgeRequest) (ledgerstore.BridgeTransfer, error)
	GetBridgeTransfer(ctx context.Context, id uuid.UUID) (ledgerstore.BridgeTransfer, error)
	BridgeComplete(ctx context.Context, id uuid.UUID, feeUnits int64) (ledgerstore.BridgeTransfer, error)
	BridgeRefund(ctx context.Context, id uuid.UUID, reason string) (ledgerstore.BridgeTransfer, error)
	BridgePosition(ctx context.Context, peerFrame string) (ledgerstore.BridgePosition, error)
	BridgeInboundApplied(ctx context.Context, peerFrame, kind string, ids []uuid.UUID) (map[uuid.UUID]bool, error)
	StaleBridgeTransfers(ctx context.Context, before time.Time, limit int) ([]ledgerstore.BridgeTransfer, error)
	BridgeTransfers(ctx context.Context, ids []uuid.UUID) ([]ledgerstore.BridgeTransfer, error)
	BridgeCompleteMany(ctx context.Context, fees map[uuid.UUID]int64) error
}

// LedgerPort adapts the store to the activities' port.
type LedgerPort struct {
	Store Store
	// Settled, when set, is told which operations a batch completed, as
	// soon as that is committed (the batcher starts the pair's next batch
	// without waiting for the workflow's result).
	Settled func(ids []uuid.UUID)
}

var (
	_ activities.BridgeLedger      = LedgerPort{}
	_ activities.BridgeBatchLedger = LedgerPort{}
)

// BridgeRecord reads operation id.
func (l LedgerPort) BridgeRecord(ctx context.Context, id uuid.UUID) (activities.BridgeRecord, error) {
	t, err := l.Store.GetBridgeTransfer(ctx, id)
	if err != nil {
		return activities.BridgeRecord{}, err
	}
	return activities.BridgeRecord{ID: t.ID, Kind: t.Kind, PeerFrame: t.PeerFrame, Recipient: t.Recipient,
		AmountUnits: t.AmountUnits, Status: t.Status, ExpiresAt: t.ExpiresAt}, nil
}

// BridgeComplete marks id completed.
func (l LedgerPort) BridgeComplete(ctx context.Context, id uuid.UUID, fee int64) error {
	_, err := l.Store.BridgeComplete(ctx, id, fee)
	return err
}

// BridgeRecords reads several operations.
func (l LedgerPort) BridgeRecords(ctx context.Context, ids []uuid.UUID) ([]activities.BridgeRecord, error) {
	ts, err := l.Store.BridgeTransfers(ctx, ids)
	out := make([]activities.BridgeRecord, 0, len(ts))
	for _, t := range ts {
		out = append(out, activities.BridgeRecord{ID: t.ID, Kind: t.Kind, PeerFrame: t.PeerFrame, Recipient: t.Recipient,
			AmountUnits: t.AmountUnits, Status: t.Status, ExpiresAt: t.ExpiresAt})
	}
	return out, err
}

// BridgeCompleteMany completes several operations.
func (l LedgerPort) BridgeCompleteMany(ctx context.Context, fees map[uuid.UUID]int64) error {
	if err := l.Store.BridgeCompleteMany(ctx, fees); err != nil {
		return err
	}
	if l.Settled != nil {
		ids := make([]uuid.UUID, 0, len(fees))
		for id := range fees {
			ids = append(ids, id)
		}
		l.Settled(ids)
	}
	return nil
}

// BridgeRefund refunds id.
func (l LedgerPort) BridgeRefund(ctx context.Context, id uuid.UUID, reason string) error {
	_, err := l.Store.BridgeRefund(ctx, id, reason)
	return err
}

// Service accepts bridge operations on a frame's mainframe and starts
// their workflows.
type Service struct {
	Frame     string // this frame
	Store     Store
	Peers     *Directory
	Client    *Client
	Temporal  client.Client
	TaskQueue string
	Window    time.Duration
	Log       *slog.Logger
	Metrics   *Metrics
	// Batcher, when set (and batching: MaxBatch ≠ 1), carries operations
	// in BridgeBatch workflows per peer frame, with admission control.
	Batcher *Batcher
	// Accepter, when set, group-commits the first legs.
	Accepter *Accepter
}

// Request is a send or a redemption as the API received it.
type Request struct {
	Kind        string // ledgerstore.BridgeSend or BridgeRedeem
	Frame       string // the peer frame
	From, To    string
	AmountUnits int64
	Key         string // the client's idempotency key
}

// Start records the operation, moves its first leg (lock, or burn) and
// starts its workflow. A retry with the same key returns the original
// and makes sure its workflow runs.
func (s *Service) Start(ctx context.Context, r Request) (ledgerstore.BridgeTransfer, error) {
	if r.Frame == s.Frame {
		return ledgerstore.BridgeTransfer{}, apperr.New(apperr.Invalid, "frame %q is this frame: pay within a frame with POST /api/v1/transfers", clip(r.Frame))
	}
	if _, ok := s.Peers.Get(r.Frame); !ok {
		return ledgerstore.BridgeTransfer{}, apperr.New(apperr.Invalid, "frame %q is not a frame this one bridges with", clip(r.Frame))
	}
	window := s.Window
	if window <= 0 {
		window = DefaultWindow
	}
	batched := s.Batcher != nil && s.Batcher.Opts.MaxBatch != 1
	release := func() {}
	if batched {
		var err error
		if release, err = s.Batcher.Admit(ctx, r.Frame); err != nil {
			return ledgerstore.BridgeTransfer{}, err
		}
	}
	req := ledgerstore.BridgeRequest{
		Kind: r.Kind, PeerFrame: r.Frame, Sender: r.From, Recipient: r.To, AmountUnits: r.AmountUnits,
		ClientKey: r.Key, Window: window, WorkflowID: workflows.BridgeWorkflowID,
	}
	var t ledgerstore.BridgeTransfer
	var err error
	if s.Accepter != nil {
		t, err = s.Accepter.Start(ctx, req)
	} else {
		t, err = s.Store.BridgeStart(ctx, req)
	}
	if err != nil {
		release()
		return t, err
	}
	if batched {
		if t.Replayed || t.Status != ledgerstore.BridgePending {
			release() // already carried, or being carried
		} else {
			s.Batcher.Submit(r.Frame, t.ID)
		}
		return t, nil
	}
	if t.Status == ledgerstore.BridgePending {
		if err := s.startWorkflow(ctx, t); err != nil {
			// Accepted and locked: recovery starts it later.
			s.log().Warn("bridge workflow not started; recovery will", "transfer", t.ID, "err", err)
		}
	}
	return t, nil
}

func (s *Service) startWorkflow(ctx context.Context, t ledgerstore.BridgeTransfer) error {
	name := workflows.BridgeTransferWorkflowName
	if t.Kind == ledgerstore.BridgeRedeem {
		name = workflows.BridgeRedemptionWorkflowName
	}
	_, err := s.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: t.WorkflowID, TaskQueue: s.TaskQueue,
		TypedSearchAttributes: workflows.BridgeSearchAttributes(t.ID, s.Frame, t.PeerFrame),
		EnableEagerStart:      true,
	}, name, workflows.BridgeInput{TransferID: t.ID})
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return nil
	}
	return err
}

// Get returns operation id.
func (s *Service) Get(ctx context.Context, id uuid.UUID) (ledgerstore.BridgeTransfer, error) {
	return s.Store.GetBridgeTransfer(ctx, id)
}

// Recover starts the workflows of operations pending for longer than age
// (a crash between accepting and starting); Temporal refuses a duplicate
// of a running one, and a finished workflow's operation is not pending.
func (s *Service) Recover(ctx context.Context, age time.Duration) {
	ts, err := s.Store.StaleBridgeTransfers(ctx, time.Now().Add(-age), 500)
	if err != nil {
		s.log().Warn("bridge recovery", "err", err)
		return
	}
	for _, t := range ts {
		if s.Batcher != nil && s.Batcher.Carrying(t.ID) {
			continue
		}
		full, err := s.Store.GetBridgeTransfer(ctx, t.ID)
		if err != nil || full.Status != ledgerstore.BridgePending {
			continue
		}
		if err := s.startWorkflowReusing(ctx, full); err != nil {
			s.log().Warn("bridge recovery: start", "transfer", t.ID, "err", err)
		}
	}
}

// startWorkflowReusing starts t's workflow even when an earlier run of it
// ended (it then finds the operation finished or carries it on). An
// earlier attempt may have reached the peer, so the workflow will not
// refund without the peer's answer.
func (s *Service) startWorkflowReusing(ctx context.Context, t ledgerstore.BridgeTransfer) error {
	name := workflows.BridgeTransferWorkflowName
	if t.Kind == ledgerstore.BridgeRedeem {
		name = workflows.BridgeRedemptionWorkflowName
	}
	_, err := s.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: t.WorkflowID, TaskQueue: s.TaskQueue,
		TypedSearchAttributes: workflows.BridgeSearchAttributes(t.ID, s.Frame, t.PeerFrame),
	}, name, workflows.BridgeInput{TransferID: t.ID, MaybeDelivered: true})
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return nil
	}
	return err
}

// RunRecovery calls Recover every interval until ctx ends.
func (s *Service) RunRecovery(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.Recover(ctx, every)
		}
	}
}

func (s *Service) log() *slog.Logger {
	if s.Log == nil {
		return slog.Default()
	}
	return s.Log
}
