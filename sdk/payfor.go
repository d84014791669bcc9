package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Call is a request to another agent's paid endpoint.
type Call struct {
	Method string
	URL    string
	Body   []byte
	Header http.Header
	// MaxUnits is the most this call may cost; a higher price is refused
	// before anything is reserved.
	MaxUnits int64
	Currency string // "" accepts the offer's
}

// Paid is a paid call's answer.
type Paid struct {
	Status  int
	Header  http.Header
	Body    []byte
	Offer   *Offer        // the 402 offer, when the first attempt was refused
	Token   *PaymentToken // the token presented
	Charged bool          // the answer came after a payment
}

// PayFor calls c's endpoint; when it answers 402 with an offer within
// budget, it asks the caller's registry for a payment token for the
// offer's payee and price, and calls again presenting it. If that second
// call fails, the token is released so the reservation returns at once.
//
// The offer is remembered per method and URL: the next PayFor of the same
// endpoint pays up front and skips the 402 round trip (falling back to it
// if the endpoint refuses the payment, e.g. because its price changed).
func (c *Client) PayFor(ctx context.Context, call Call) (Paid, error) {
	key := call.Method + " " + call.URL
	if c.offers != nil {
		if o, ok := c.offers.Load(key); ok {
			paid, err := c.payOffer(ctx, call, o.(*Offer))
			if err != nil || paid.Status != http.StatusPaymentRequired {
				// A failure is returned as is, never paid again here: the
				// payee may have settled before the answer was lost.
				return paid, err
			}
			c.offers.Delete(key)
		}
	}
	p, err := c.send(ctx, call, "")
	if err != nil || p.Status != http.StatusPaymentRequired {
		return p, err
	}
	var body struct {
		Payment *Offer `json:"payment"`
	}
	if err := json.Unmarshal(p.Body, &body); err != nil || body.Payment == nil || body.Payment.Scheme != PaymentScheme {
		return p, fmt.Errorf("theprotocol: 402 without a %s offer", PaymentScheme)
	}
	paid, err := c.payOffer(ctx, call, body.Payment)
	if err == nil && paid.Charged && c.offers != nil {
		c.offers.Store(key, body.Payment)
	}
	return paid, err
}

// payOffer pays offer and sends call with the token.
func (c *Client) payOffer(ctx context.Context, call Call, offer *Offer) (Paid, error) {
	p := Paid{Offer: offer}
	switch {
	case offer.PriceUnits <= 0 || offer.PriceUnits > call.MaxUnits:
		return p, fmt.Errorf("theprotocol: the call costs %d units, over the budget of %d", offer.PriceUnits, call.MaxUnits)
	case call.Currency != "" && offer.Currency != call.Currency:
		return p, fmt.Errorf("theprotocol: the call is priced in %s, not %s", offer.Currency, call.Currency)
	}
	tok, err := c.IssuePaymentToken(ctx, offer.Payee, offer.PriceUnits, 2*time.Minute, call.Method+" "+call.URL)
	if err != nil {
		return p, err
	}
	paid, err := c.send(ctx, call, tok.Token)
	paid.Offer, paid.Token = offer, &tok
	if err != nil || paid.Status >= 300 {
		_ = c.ReleasePayment(context.WithoutCancel(ctx), tok.Token)
		return paid, err
	}
	paid.Charged = true
	return paid, nil
}

// send is one attempt; token "" sends none.
func (c *Client) send(ctx context.Context, call Call, token string) (Paid, error) {
	req, err := http.NewRequestWithContext(ctx, call.Method, call.URL, bytes.NewReader(call.Body))
	if err != nil {
		return Paid{}, err
	}
	for k, vs := range call.Header {
		req.Header[k] = vs
	}
	if token != "" {
		req.Header.Set(PaymentHeader, token)
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return Paid{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	return Paid{Status: resp.StatusCode, Header: resp.Header, Body: b}, err
}
