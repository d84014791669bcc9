package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// A2A JSON-RPC: the message/send method of the Agent2Agent protocol, with
// a payment-token extension — the token travels in the message metadata
// under A2APaymentKey, and a call without one is answered with the JSON-RPC
// error A2APaymentRequired whose data is the Offer.
const (
	A2AMethodSend      = "message/send"
	A2APaymentKey      = "theprotocol.dev/payment-token"
	A2APaymentRequired = -32402 // in the implementation-defined server error range
	a2aInvalidRequest  = -32600
	a2aMethodNotFound  = -32601
	a2aInvalidParams   = -32602
	a2aInternal        = -32603
)

// A2APart is one part of a message (text only here).
type A2APart struct {
	Kind string `json:"kind"`
	Text string `json:"text,omitempty"`
}

// A2AMessage is an A2A message.
type A2AMessage struct {
	Kind      string         `json:"kind"` // "message"
	Role      string         `json:"role"` // "user" or "agent"
	MessageID string         `json:"messageId"`
	Parts     []A2APart      `json:"parts"`
	Metadata  map[string]any `json:"metadata,omitempty"`
}

// Text joins the message's text parts.
func (m A2AMessage) Text() string {
	var b bytes.Buffer
	for _, p := range m.Parts {
		b.WriteString(p.Text)
	}
	return b.String()
}

type rpcRequest struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
}

// RPCError is a JSON-RPC error.
type RPCError struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

func (e *RPCError) Error() string { return fmt.Sprintf("a2a: %d %s", e.Code, e.Message) }

type rpcResponse struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  any             `json:"result,omitempty"`
	Error   *RPCError       `json:"error,omitempty"`
}

// A2AHandler serves message/send; with a Verifier every message must carry
// a payment token, settled after Handle answers. With Callers, every
// request must come from an agent presenting a valid SVID over mutual TLS
// (serve with Callers.ServerTLSConfig()); Handle finds its DID with
// CallerDID.
type A2AHandler struct {
	Handle   func(ctx context.Context, in A2AMessage) (A2AMessage, error)
	Verifier *PaymentVerifier  // nil: free
	Callers  *A2AAuthenticator // nil: any caller
}

// a2aUnauthenticated answers a caller without a valid, active agent SVID.
const a2aUnauthenticated = -32401

func (h *A2AHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reply := func(id json.RawMessage, result any, e *RPCError) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(rpcResponse{JSONRPC: "2.0", ID: id, Result: result, Error: e})
	}
	if h.Callers != nil {
		did, err := h.Callers.VerifyCaller(r)
		if err != nil {
			reply(nil, nil, &RPCError{Code: a2aUnauthenticated, Message: err.Error()})
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), callerKey{}, did))
	}
	var req rpcRequest
	if r.Method != http.MethodPost {
		reply(nil, nil, &RPCError{Code: a2aInvalidRequest, Message: "POST a JSON-RPC request"})
		return
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil || req.JSONRPC != "2.0" {
		reply(nil, nil, &RPCError{Code: a2aInvalidRequest, Message: "not a JSON-RPC 2.0 request"})
		return
	}
	if req.Method != A2AMethodSend {
		reply(req.ID, nil, &RPCError{Code: a2aMethodNotFound, Message: "unknown method " + req.Method})
		return
	}
	var params struct {
		Message A2AMessage `json:"message"`
	}
	if err := json.Unmarshal(req.Params, &params); err != nil || len(params.Message.Parts) == 0 {
		reply(req.ID, nil, &RPCError{Code: a2aInvalidParams, Message: "params.message with parts is required"})
		return
	}
	ctx := r.Context()
	var tok string
	if v := h.Verifier; v != nil {
		tok, _ = params.Message.Metadata[A2APaymentKey].(string)
		code, err := "payment_required", fmt.Errorf("this agent charges %d base units of %s per message", v.PriceUnits, v.Currency)
		if tok != "" {
			code, err = v.Accept(ctx, tok)
		}
		if err != nil {
			data, _ := json.Marshal(map[string]any{"reason": code, "payment": v.Offer()})
			reply(req.ID, nil, &RPCError{Code: A2APaymentRequired, Message: err.Error(), Data: data})
			return
		}
	}
	out, err := h.Handle(ctx, params.Message)
	if h.Verifier != nil {
		if ferr := h.Verifier.Finish(ctx, tok, err == nil); ferr != nil {
			reply(req.ID, nil, &RPCError{Code: A2APaymentRequired, Message: "payment not settled: " + ferr.Error()})
			return
		}
	}
	if err != nil {
		reply(req.ID, nil, &RPCError{Code: a2aInternal, Message: err.Error()})
		return
	}
	out.Kind = "message"
	if out.Role == "" {
		out.Role = "agent"
	}
	if out.MessageID == "" {
		out.MessageID = NewIdempotencyKey()
	}
	reply(req.ID, out, nil)
}

// SendMessage sends text to an A2A endpoint with message/send; when the
// agent asks for payment within maxUnits it gets a payment token from the
// caller's registry and sends again with it.
func (c *Client) SendMessage(ctx context.Context, endpoint, text string, maxUnits int64) (A2AMessage, error) {
	msg := A2AMessage{Kind: "message", Role: "user", MessageID: NewIdempotencyKey(), Parts: []A2APart{{Kind: "text", Text: text}}}
	out, rerr, err := c.rpcSend(ctx, endpoint, msg)
	if err != nil || rerr == nil {
		return out, err
	}
	if rerr.Code != A2APaymentRequired {
		return out, rerr
	}
	var data struct {
		Payment *Offer `json:"payment"`
	}
	if json.Unmarshal(rerr.Data, &data) != nil || data.Payment == nil {
		return out, rerr
	}
	if data.Payment.PriceUnits <= 0 || data.Payment.PriceUnits > maxUnits {
		return out, fmt.Errorf("a2a: the agent charges %d units, over the budget of %d", data.Payment.PriceUnits, maxUnits)
	}
	tok, err := c.IssuePaymentToken(ctx, data.Payment.Payee, data.Payment.PriceUnits, 0, "a2a "+endpoint)
	if err != nil {
		return out, err
	}
	msg.MessageID = NewIdempotencyKey()
	msg.Metadata = map[string]any{A2APaymentKey: tok.Token}
	out, rerr, err = c.rpcSend(ctx, endpoint, msg)
	if err == nil && rerr != nil {
		err = rerr
	}
	if err != nil {
		_ = c.ReleasePayment(context.WithoutCancel(ctx), tok.Token)
	}
	return out, err
}

func (c *Client) rpcSend(ctx context.Context, endpoint string, msg A2AMessage) (A2AMessage, *RPCError, error) {
	params, _ := json.Marshal(map[string]any{"message": msg})
	body, _ := json.Marshal(rpcRequest{JSONRPC: "2.0", ID: json.RawMessage(`"` + msg.MessageID + `"`), Method: A2AMethodSend, Params: params})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return A2AMessage{}, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	hc := c.http()
	if c.a2aHTTP != nil {
		hc = c.a2aHTTP
	}
	resp, err := hc.Do(req)
	if err != nil {
		return A2AMessage{}, nil, err
	}
	defer resp.Body.Close()
	var out struct {
		Result *A2AMessage `json:"result"`
		Error  *RPCError   `json:"error"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(&out); err != nil {
		return A2AMessage{}, nil, fmt.Errorf("a2a: decode answer: %w", err)
	}
	if out.Error != nil {
		return A2AMessage{}, out.Error, nil
	}
	if out.Result == nil {
		return A2AMessage{}, nil, fmt.Errorf("a2a: answer without result")
	}
	return *out.Result, nil, nil
}
