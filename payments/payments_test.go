package payments_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/payments"
)

// fakes records every call, in order, so a test sees which route a payment
// took and what it touched on the way.
type fakes struct {
	calls []string

	transferErr error
	local       bool
	existsErr   error
	home        string
	homeErr     error
	admitErr    error
	replayed    bool
	getTransfer error
	getXfer     error
	getBridge   error
}

func (f *fakes) Transfer(_ context.Context, r ledgerstore.TransferRequest) (ledgerstore.Transfer, error) {
	f.calls = append(f.calls, "transfer")
	if f.transferErr != nil {
		return ledgerstore.Transfer{}, f.transferErr
	}
	return ledgerstore.Transfer{From: r.From, To: r.To, AmountUnits: r.AmountUnits}, nil
}

func (f *fakes) AccountExists(context.Context, string) (bool, error) {
	f.calls = append(f.calls, "exists")
	return f.local, f.existsErr
}

func (f *fakes) GetTransfer(_ context.Context, id uuid.UUID) (ledgerstore.Transfer, error) {
	f.calls = append(f.calls, "get-transfer")
	return ledgerstore.Transfer{ID: id, From: "dev:a", To: "dev:b"}, f.getTransfer
}

func (f *fakes) GetXfer(_ context.Context, id uuid.UUID) (ledgerstore.Xfer, error) {
	f.calls = append(f.calls, "get-xfer")
	return ledgerstore.Xfer{ID: id, From: "dev:c", To: "did:d"}, f.getXfer
}

func (f *fakes) GetBridgeTransfer(_ context.Context, id uuid.UUID) (ledgerstore.BridgeTransfer, error) {
	f.calls = append(f.calls, "get-bridge")
	return ledgerstore.BridgeTransfer{ID: id, Sender: "dev:e", Recipient: "did:f"}, f.getBridge
}

func (f *fakes) Home(context.Context, string) (string, error) {
	f.calls = append(f.calls, "home")
	return f.home, f.homeErr
}

func (f *fakes) Begin(_ context.Context, r ledgerstore.XferRequest) (ledgerstore.Xfer, error) {
	f.calls = append(f.calls, "begin "+r.Target+" "+r.IdempotencyKey)
	return ledgerstore.Xfer{From: r.From, To: r.To, Target: r.Target, AmountUnits: r.AmountUnits, Replayed: f.replayed}, nil
}

func (f *fakes) Admit(_ context.Context, target string) error {
	f.calls = append(f.calls, "admit "+target)
	return f.admitErr
}

func (f *fakes) Add(x ledgerstore.Xfer) { f.calls = append(f.calls, "add "+x.Target) }

func service(f *fakes, cross bool) *payments.Service {
	s := &payments.Service{Ledger: f, Transfers: f}
	if cross {
		s.Cross = &payments.Cross{Router: f, Accepter: f, Settlement: f}
	}
	return s
}

const remoteAgent = "did:theprotocol:0b4e1f7c-5c1e-4d8e-9a55-3f0f6b0c2a11"

var unknown = apperr.New(apperr.NotFound, "account %q not found", remoteAgent)

// TestPayRoutes: every way a payment is routed, and what each route
// touches. The local transfer always comes first; the receiver's home is
// only looked up when this registry does not know the receiver.
func TestPayRoutes(t *testing.T) {
	t.Parallel()
	down := errors.New("connection refused")
	for _, tc := range []struct {
		name    string
		to      string
		cross   bool
		set     func(*fakes)
		code    apperr.Code // "" = paid
		isCross bool
		calls   []string
	}{
		{name: "local", to: remoteAgent, cross: true, calls: []string{"transfer"}},
		{name: "refused here, not for want of a receiver", to: remoteAgent, cross: true,
			set:  func(f *fakes) { f.transferErr = apperr.New(apperr.InsufficientFunds, "short") },
			code: apperr.InsufficientFunds, calls: []string{"transfer"}},
		{name: "unknown, no cross-registry machinery", to: remoteAgent,
			set: func(f *fakes) { f.transferErr = unknown }, code: apperr.NotFound, calls: []string{"transfer"}},
		{name: "unknown system account: never routed elsewhere", to: "treasury", cross: true,
			set: func(f *fakes) { f.transferErr = unknown }, code: apperr.NotFound, calls: []string{"transfer"}},
		{name: "developer wallet on a peer", to: "dev:0b4e1f7c-5c1e-4d8e-9a55-3f0f6b0c2a11", cross: true, isCross: true,
			set:   func(f *fakes) { f.transferErr, f.home = unknown, "beta" },
			calls: []string{"transfer", "exists", "home", "admit beta", "begin beta k1", "add beta"}},
		{name: "the receiver is here after all (the sender was unknown)", to: remoteAgent, cross: true,
			set: func(f *fakes) { f.transferErr, f.local = unknown, true }, code: apperr.NotFound, calls: []string{"transfer", "exists"}},
		{name: "local lookup fails: the first answer stands", to: remoteAgent, cross: true,
			set: func(f *fakes) { f.transferErr, f.existsErr = unknown, down }, code: apperr.NotFound, calls: []string{"transfer", "exists"}},
		{name: "no peer has it", to: remoteAgent, cross: true,
			set: func(f *fakes) { f.transferErr = unknown }, code: apperr.NotFound, calls: []string{"transfer", "exists", "home"}},
		{name: "peers unreachable", to: remoteAgent, cross: true,
			set:  func(f *fakes) { f.transferErr, f.homeErr = unknown, apperr.New(apperr.Unavailable, "no peer answered") },
			code: apperr.Unavailable, calls: []string{"transfer", "exists", "home"}},
		{name: "cross-registry", to: remoteAgent, cross: true, isCross: true,
			set:   func(f *fakes) { f.transferErr, f.home = unknown, "beta" },
			calls: []string{"transfer", "exists", "home", "admit beta", "begin beta k1", "add beta"}},
		{name: "cross-registry replay is not queued again", to: remoteAgent, cross: true, isCross: true,
			set:   func(f *fakes) { f.transferErr, f.home, f.replayed = unknown, "beta", true },
			calls: []string{"transfer", "exists", "home", "admit beta", "begin beta k1"}},
		{name: "settlement backlog full: nothing written", to: remoteAgent, cross: true,
			set:  func(f *fakes) { f.transferErr, f.home, f.admitErr = unknown, "beta", context.DeadlineExceeded },
			code: apperr.Unavailable, calls: []string{"transfer", "exists", "home", "admit beta"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakes{}
			if tc.set != nil {
				tc.set(f)
			}
			p, err := service(f, tc.cross).Pay(context.Background(), ledgerstore.TransferRequest{
				From: "dev:0a0a0a0a-5c1e-4d8e-9a55-3f0f6b0c2a11", To: tc.to, AmountUnits: 7, IdempotencyKey: "k1",
			})
			require.Equal(t, tc.calls, f.calls)
			require.Equal(t, tc.code, apperr.CodeOf(err), "%v", err)
			if tc.code != "" {
				return
			}
			require.Equal(t, tc.isCross, p.Cross)
			from, to := p.Parties()
			require.Equal(t, "dev:0a0a0a0a-5c1e-4d8e-9a55-3f0f6b0c2a11", from)
			require.Equal(t, tc.to, to)
			if tc.isCross {
				require.Equal(t, "beta", p.Xfer.Target)
				require.Equal(t, int64(7), p.Xfer.AmountUnits)
			}
		})
	}
}

// TestRerouteKeepsTheCause: the second step alone returns the first
// step's error unchanged when there is no other route.
func TestRerouteKeepsTheCause(t *testing.T) {
	t.Parallel()
	f := &fakes{}
	_, err := service(f, true).Reroute(context.Background(), ledgerstore.TransferRequest{To: remoteAgent}, unknown)
	require.Same(t, unknown, err)
	require.Equal(t, []string{"exists", "home"}, f.calls)
}

func TestGet(t *testing.T) {
	t.Parallel()
	id := uuid.New()
	missing := apperr.New(apperr.NotFound, "transfer not found")
	for _, tc := range []struct {
		name                  string
		transfer, xfr, bridge error
		mainframe             bool  // the service sends over the bridge
		want                  error // nil: found
		cross, frame          bool
		calls                 []string
	}{
		{name: "a transfer here", calls: []string{"get-transfer"}},
		{name: "a cross-registry transfer", transfer: missing, cross: true, calls: []string{"get-transfer", "get-xfer"}},
		{name: "neither: the transfer lookup's answer", transfer: missing, xfr: apperr.New(apperr.NotFound, "xfer"), want: missing, calls: []string{"get-transfer", "get-xfer"}},
		{name: "transfer lookup fails", transfer: context.Canceled, want: context.Canceled, calls: []string{"get-transfer"}},
		{name: "xfer lookup fails", transfer: missing, xfr: context.Canceled, want: context.Canceled, calls: []string{"get-transfer", "get-xfer"}},
		{name: "a bridge send on a mainframe", transfer: missing, xfr: missing, mainframe: true, frame: true,
			calls: []string{"get-transfer", "get-xfer", "get-bridge"}},
		{name: "none on a mainframe: the transfer lookup's answer", transfer: missing, xfr: missing, bridge: apperr.New(apperr.NotFound, "bridge"),
			mainframe: true, want: missing, calls: []string{"get-transfer", "get-xfer", "get-bridge"}},
		{name: "bridge lookup fails", transfer: missing, xfr: missing, bridge: context.Canceled, mainframe: true, want: context.Canceled,
			calls: []string{"get-transfer", "get-xfer", "get-bridge"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakes{getTransfer: tc.transfer, getXfer: tc.xfr, getBridge: tc.bridge}
			s := service(f, false)
			if tc.mainframe {
				s.Frames = fakeFrames{f: f}
			}
			p, err := s.Get(context.Background(), id)
			require.Equal(t, tc.calls, f.calls)
			if tc.want != nil {
				require.ErrorIs(t, err, tc.want)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.cross, p.Cross)
			require.Equal(t, tc.frame, p.Frame)
			from, _ := p.Parties()
			switch {
			case tc.frame:
				require.Equal(t, id, p.Bridge.ID)
				require.Equal(t, "dev:e", from)
			case tc.cross:
				require.Equal(t, id, p.Xfer.ID)
				require.Equal(t, "dev:c", from)
			default:
				require.Equal(t, id, p.Transfer.ID)
				require.Equal(t, "dev:a", from)
			}
		})
	}
}

// fakeFrames is a bridge router: frame claims the receiver ("" none).
type fakeFrames struct {
	f     *fakes
	frame string
	err   error
}

func (ff fakeFrames) Send(_ context.Context, r ledgerstore.TransferRequest) (ledgerstore.BridgeTransfer, bool, error) {
	ff.f.calls = append(ff.f.calls, "frames")
	if ff.err != nil || ff.frame == "" {
		return ledgerstore.BridgeTransfer{}, false, ff.err
	}
	return ledgerstore.BridgeTransfer{Kind: ledgerstore.BridgeSend, PeerFrame: ff.frame, Sender: r.From, Recipient: r.To, AmountUnits: r.AmountUnits}, true, nil
}

// TestPayAcrossFrames: a receiver no registry of this frame claims is
// offered to the peer frames, after the peers of this frame; a claim makes
// a bridge send, no claim keeps the local answer, a failed lookup is
// returned.
func TestPayAcrossFrames(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		cross bool
		frame string
		err   error
		code  apperr.Code
		calls []string
	}{
		{name: "claimed by a peer frame", cross: true, frame: "beta", calls: []string{"transfer", "exists", "home", "frames"}},
		{name: "a mainframe without registry peers", frame: "beta", calls: []string{"transfer", "exists", "frames"}},
		{name: "no frame claims it", cross: true, code: apperr.NotFound, calls: []string{"transfer", "exists", "home", "frames"}},
		{name: "frames unreachable", cross: true, err: apperr.New(apperr.Unavailable, "no answer"), code: apperr.Unavailable,
			calls: []string{"transfer", "exists", "home", "frames"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakes{transferErr: unknown}
			s := service(f, tc.cross)
			s.Frames = fakeFrames{f: f, frame: tc.frame, err: tc.err}
			p, err := s.Pay(context.Background(), ledgerstore.TransferRequest{From: "dev:0a0a0a0a-5c1e-4d8e-9a55-3f0f6b0c2a11", To: remoteAgent, AmountUnits: 7, IdempotencyKey: "k1"})
			require.Equal(t, tc.calls, f.calls)
			require.Equal(t, tc.code, apperr.CodeOf(err), "%v", err)
			if tc.code != "" {
				return
			}
			require.True(t, p.Frame)
			require.Equal(t, tc.frame, p.Bridge.PeerFrame)
			from, to := p.Parties()
			require.Equal(t, "dev:0a0a0a0a-5c1e-4d8e-9a55-3f0f6b0c2a11", from)
			require.Equal(t, remoteAgent, to)
		})
	}
	// A receiver a registry of this frame claims never reaches the bridge.
	f := &fakes{transferErr: unknown, home: "beta-op1"}
	s := service(f, true)
	s.Frames = fakeFrames{f: f, frame: "beta"}
	p, err := s.Pay(context.Background(), ledgerstore.TransferRequest{From: "dev:0a0a0a0a-5c1e-4d8e-9a55-3f0f6b0c2a11", To: remoteAgent, AmountUnits: 7, IdempotencyKey: "k1"})
	require.NoError(t, err)
	require.True(t, p.Cross)
	require.NotContains(t, f.calls, "frames")
}
