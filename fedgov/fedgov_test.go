package fedgov

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/governance"
)

// fakeLedger records what reaches the ledger; nothing should for a
// refused request.
type fakeLedger struct {
	Ledger
	joined  []ledgerstore.JoinInput
	pinned  map[string]ed25519.PublicKey
	stored  []governance.SignedTally
	tallyOf func(caller string) (governance.SignedTally, error)
}

func (f *fakeLedger) JoinFederation(_ context.Context, in ledgerstore.JoinInput) (ledgerstore.Proposal, error) {
	f.joined = append(f.joined, in)
	return ledgerstore.Proposal{ID: in.ID, Electorate: 42, Voters: 2}, nil
}

func (f *fakeLedger) PinPeerKey(_ context.Context, _ uuid.UUID, peer string, key ed25519.PublicKey) error {
	f.pinned[peer] = key
	return nil
}

func (f *fakeLedger) StorePeerTally(_ context.Context, _ uuid.UUID, _ string, st governance.SignedTally) error {
	f.stored = append(f.stored, st)
	return nil
}

func (f *fakeLedger) PeerLocalTally(_ context.Context, _ uuid.UUID, caller, _ string, _ ed25519.PrivateKey) (governance.SignedTally, error) {
	return f.tallyOf(caller)
}

func (f *fakeLedger) Proposal(_ context.Context, id uuid.UUID) (ledgerstore.Proposal, error) {
	return ledgerstore.Proposal{ID: id, Proposer: "did:theprotocol:a", Title: "t", Window: time.Minute, QuorumBps: 5000, ThresholdBps: 5000, ClosesAt: time.Now().Add(time.Minute)}, nil
}

type onePeer struct{ e Endpoint }

func (o onePeer) List() []Endpoint { return []Endpoint{o.e} }
func (o onePeer) Resolve(r string) (Endpoint, bool) {
	return o.e, r == o.e.Registry
}

// The peer side refuses what does not come from a federated registry, an
// announcement of another registry's proposal and a malformed body, with
// a 4xx and nothing recorded; the origin side maps a peer's answers to
// retryable (5xx, transport) or final errors and pins the key answered.
func TestPeerChannelBoundary(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	peerLedger := &fakeLedger{pinned: map[string]ed25519.PublicKey{}}
	peer := &Service{Ledger: peerLedger, Self: "op1", Key: key}
	mux := http.NewServeMux()
	caller := "main"
	peer.Register(mux, func(*http.Request) (string, error) {
		if caller == "" {
			return "", errors.New("no federated registry")
		}
		return caller, nil
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	post := func(path, body string) int {
		resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(body))
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	id := uuid.New()
	ann := `{"proposal_id":"` + id.String() + `","origin_registry":"main","origin_frame":"alpha","proposer":"did:theprotocol:a","title":"t","body":"",` +
		`"window_seconds":60,"quorum_bps":5000,"threshold_bps":5000,"closes_at":"` + time.Now().Add(time.Minute).Format(time.RFC3339Nano) + `"}`
	caller = ""
	require.Equal(t, 403, post(AnnouncePath, ann), "not a federated registry")
	require.Equal(t, 403, post(AnnouncePath+"/"+id.String()+"/tally", `{}`))
	caller = "other"
	require.Equal(t, 403, post(AnnouncePath, ann), "another registry's proposal")
	caller = "main"
	require.Equal(t, 400, post(AnnouncePath, `{"proposal_id":`), "malformed")
	require.Equal(t, 400, post(AnnouncePath, strings.Replace(ann, `"title"`, `"extra":1,"title"`, 1)), "unknown field")
	require.Equal(t, 400, post(AnnouncePath, strings.Replace(ann, `"window_seconds":60`, `"window_seconds":-1`, 1)), "window")
	require.Equal(t, 400, post(AnnouncePath+"/not-a-uuid/tally", `{}`))
	require.Empty(t, peerLedger.joined, "nothing recorded for a refused announcement")
	require.Equal(t, 200, post(AnnouncePath, ann))
	require.Len(t, peerLedger.joined, 1)

	// The origin side, against this peer.
	originLedger := &fakeLedger{pinned: map[string]ed25519.PublicKey{}}
	origin := &Service{Ledger: originLedger, Self: "main", Frame: "alpha", Key: key,
		Peers: onePeer{Endpoint{Registry: "op1", Via: ledgerstore.ViaFrame, HTTP: srv.Client(), BaseURL: srv.URL}}}
	require.NoError(t, origin.Announce(context.Background(), id, "op1"))
	require.Equal(t, key.Public(), originLedger.pinned["op1"], "the key the peer answered is pinned")
	require.Equal(t, apperr.Unavailable, apperr.CodeOf(origin.Announce(context.Background(), id, "ghost")), "unknown peer: retry")

	peerLedger.tallyOf = func(string) (governance.SignedTally, error) {
		return governance.SignedTally{}, apperr.New(apperr.FailedPrecondition, "open here")
	}
	require.Equal(t, apperr.FailedPrecondition, apperr.CodeOf(origin.Collect(context.Background(), id, "op1")), "not ended there: retry")
	peerLedger.tallyOf = func(string) (governance.SignedTally, error) { return governance.SignedTally{}, errors.New("boom") }
	require.Equal(t, apperr.Unavailable, apperr.CodeOf(origin.Collect(context.Background(), id, "op1")), "a 500 is retried")
	st, err := governance.SignTally(key, governance.LocalTally{ProposalID: id.String(), Registry: "op1", Electorate: 10, Yes: 3, TalliedAt: time.Now().UTC().Truncate(time.Microsecond)})
	require.NoError(t, err)
	peerLedger.tallyOf = func(string) (governance.SignedTally, error) { return st, nil }
	require.NoError(t, origin.Collect(context.Background(), id, "op1"))
	require.Len(t, originLedger.stored, 1)
	require.NoError(t, originLedger.stored[0].Verify(key.Public().(ed25519.PublicKey)), "the signed tally survives the wire")
	srv.Close()
	require.Equal(t, apperr.Unavailable, apperr.CodeOf(origin.Collect(context.Background(), id, "op1")), "peer down: retry")
}
