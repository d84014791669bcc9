package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"

	"github.com/google/uuid"

	"github.com/theprotocol-dev/theprotocol/activities"
	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
)

// Client calls peer frames' bridge participant APIs over mTLS.
type Client struct {
	Peers *Directory
	// HTTP presents this node's SVID and must admit only the called
	// frame's mainframe TEG (see node/bridge.go).
	HTTP *http.Client
	// Currency is this frame's: what a mint of this frame's tokens states.
	Currency string
	// Fault, when set (tests), may fail a call before it is sent
	// (after=false: the call is undelivered) or lose the answer of one the
	// peer applied (after=true).
	Fault func(op, frame string, after bool) error
}

var (
	_ activities.BridgePeers = (*Client)(nil)
)

// errUndelivered marks a call that certainly never reached the peer.
var errUndelivered = errors.New("not delivered")

// Deliver sends r's peer leg: a send's mint, a redeem's release.
func (c *Client) Deliver(ctx context.Context, r activities.BridgeRecord) activities.BridgeAnswer {
	req := ApplyRequest{ID: r.ID, Recipient: r.Recipient, AmountUnits: r.AmountUnits, ExpiresAt: r.ExpiresAt}
	switch r.Kind {
	case ledgerstore.BridgeSend:
		req.Kind, req.Currency = ledgerstore.BridgeMint, c.Currency
	case ledgerstore.BridgeRedeem:
		req.Kind = ledgerstore.BridgeRelease
		if p, ok := c.Peers.Get(r.PeerFrame); ok {
			req.Currency = p.Currency
		}
	default:
		return activities.BridgeAnswer{Outcome: activities.BridgeRefused, Reason: "unknown bridge kind " + clip(r.Kind)}
	}
	var out ApplyAnswer
	err := c.call(ctx, "apply", r.PeerFrame, PathApply, req, &out)
	return answer(out, err)
}

// DeliverBatch sends the peer legs of rs (all with one peer frame) in one
// call; a transport failure is every operation's answer. An operation the
// peer found malformed is answered unknown: its own workflow retries it
// alone.
func (c *Client) DeliverBatch(ctx context.Context, frame string, rs []activities.BridgeRecord) []activities.BridgeAnswer {
	req := BatchRequest{Operations: make([]ApplyRequest, len(rs))}
	for i, r := range rs {
		op := ApplyRequest{ID: r.ID, Recipient: r.Recipient, AmountUnits: r.AmountUnits, ExpiresAt: r.ExpiresAt}
		if r.Kind == ledgerstore.BridgeRedeem {
			op.Kind = ledgerstore.BridgeRelease
			if p, ok := c.Peers.Get(frame); ok {
				op.Currency = p.Currency
			}
		} else {
			op.Kind, op.Currency = ledgerstore.BridgeMint, c.Currency
		}
		req.Operations[i] = op
	}
	var out BatchAnswer
	err := c.call(ctx, "apply", frame, PathApplyBatch, req, &out)
	answers := make([]activities.BridgeAnswer, len(rs))
	if err == nil && len(out.Results) != len(rs) {
		err = apperr.New(apperr.Unavailable, "the peer answered %d of %d operations", len(out.Results), len(rs))
	}
	for i := range rs {
		if err != nil {
			answers[i] = answer(ApplyAnswer{}, err)
			if answers[i].Outcome == activities.BridgeRefused {
				// A refusal of the whole request says nothing definite
				// about each operation: leave them to their own workflows.
				answers[i].Outcome = activities.BridgeUnknown
			}
			continue
		}
		res := out.Results[i]
		if res.ID != rs[i].ID {
			answers[i] = activities.BridgeAnswer{Outcome: activities.BridgeUnknown, Reason: "the peer answered for another operation"}
			continue
		}
		answers[i] = answer(res, nil)
	}
	return answers
}

// Ask asks the peer whether it applied r's leg (and fences it if not).
func (c *Client) Ask(ctx context.Context, r activities.BridgeRecord) activities.BridgeAnswer {
	kind := ledgerstore.BridgeMint
	if r.Kind == ledgerstore.BridgeRedeem {
		kind = ledgerstore.BridgeRelease
	}
	var out ApplyAnswer
	err := c.call(ctx, "status", r.PeerFrame, PathStatus, StatusRequest{ID: r.ID, Kind: kind}, &out)
	return answer(out, err)
}

// Position asks peer frame for its side of the bridge with this frame.
func (c *Client) Position(ctx context.Context, frame string, sends []uuid.UUID) (PositionAnswer, error) {
	var out PositionAnswer
	err := c.call(ctx, "position", frame, PathPosition, PositionRequest{Sends: sends}, &out)
	return out, err
}

// answer turns a call's result into an outcome. Only a call that never
// left (no connection) is undelivered; a definite refusal (4xx other than
// a conflict) means the peer applied nothing; anything else may have been
// applied.
func answer(out ApplyAnswer, err error) activities.BridgeAnswer {
	if err == nil {
		switch out.Status {
		case ledgerstore.BridgeApplied:
			return activities.BridgeAnswer{Outcome: activities.BridgeApplied, FeeUnits: out.FeeUnits}
		case ledgerstore.BridgeRejected, ledgerstore.BridgeFenced:
			reason := out.Reason
			if reason == "" {
				reason = "the peer frame refused it"
			}
			return activities.BridgeAnswer{Outcome: activities.BridgeRefused, Reason: reason}
		}
		return activities.BridgeAnswer{Outcome: activities.BridgeUnknown, Reason: "unexpected answer " + clip(out.Status)}
	}
	if errors.Is(err, errUndelivered) {
		return activities.BridgeAnswer{Outcome: activities.BridgeUndelivered, Reason: err.Error()}
	}
	var re *remoteError
	if errors.As(err, &re) && re.Status >= 400 && re.Status < 500 && re.Status != http.StatusConflict && re.Status != http.StatusRequestTimeout {
		return activities.BridgeAnswer{Outcome: activities.BridgeRefused, Reason: re.Error()}
	}
	return activities.BridgeAnswer{Outcome: activities.BridgeUnknown, Reason: err.Error()}
}

type remoteError struct {
	Status  int
	Code    string
	Message string
}

func (e *remoteError) Error() string {
	return fmt.Sprintf("peer answered %d %s: %s", e.Status, e.Code, e.Message)
}

func (c *Client) call(ctx context.Context, op, frame, path string, body, out any) error {
	p, ok := c.Peers.Get(frame)
	if !ok {
		return fmt.Errorf("frame %q is not a bridge peer: %w", frame, errUndelivered)
	}
	if c.HTTP == nil {
		return fmt.Errorf("the inter-service listener is not up: %w", errUndelivered)
	}
	if c.Fault != nil {
		if err := c.Fault(op, frame, false); err != nil {
			return fmt.Errorf("%s: %v: %w", op, err, errUndelivered)
		}
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.BaseURL+path, bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("%v: %w", err, errUndelivered)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		if neverSent(err) {
			return fmt.Errorf("%s on %s: %v: %w", op, frame, err, errUndelivered)
		}
		return apperr.Wrap(err, apperr.Unavailable, "%s on %s: %v", op, frame, err)
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes*16))
	if err != nil {
		return apperr.Wrap(err, apperr.Unavailable, "%s on %s: read answer", op, frame)
	}
	if resp.StatusCode != http.StatusOK {
		var eb struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		_ = json.Unmarshal(rb, &eb)
		return &remoteError{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message}
	}
	if c.Fault != nil {
		if err := c.Fault(op, frame, true); err != nil {
			return apperr.Wrap(err, apperr.Unavailable, "%s on %s: reply lost", op, frame)
		}
	}
	if err := json.Unmarshal(rb, out); err != nil {
		return apperr.Wrap(err, apperr.Unavailable, "%s on %s: malformed answer", op, frame)
	}
	return nil
}

// neverSent reports whether a transport error happened before any byte of
// the request could reach the peer: the connection was never made.
func neverSent(err error) bool {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}
