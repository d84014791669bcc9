package sdk

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/theprotocol-dev/theprotocol/paytoken"
)

// PaymentHeader carries a payment token on a paid call.
const PaymentHeader = "X-Payment-Token"

// PaymentScheme names the payment method in a 402 offer.
const PaymentScheme = "theprotocol-payment-token"

// Offer is the "payment" member of a 402 answer: what the call costs and
// whom to pay.
type Offer struct {
	Scheme     string `json:"scheme"`
	Header     string `json:"header"`
	Payee      string `json:"payee"`
	PriceUnits int64  `json:"price_units"`
	Currency   string `json:"currency"`
}

// KeyCache holds the public keys of the registries whose payment tokens
// an agent accepts, fetched from their JWKS and refreshed when a token
// names a key it does not know (a rotated key), at most once per MinRefresh.
type KeyCache struct {
	Registries []*Client     // unauthenticated clients of trusted registries
	MinRefresh time.Duration // 0: 5s

	mu      sync.Mutex
	keys    map[string]paytoken.Key
	fetched time.Time
}

// Lookup is a paytoken.KeyFunc (it may fetch; ctx bounds that).
func (k *KeyCache) Lookup(ctx context.Context) paytoken.KeyFunc {
	return func(kid string) (paytoken.Key, bool) {
		k.mu.Lock()
		defer k.mu.Unlock()
		if key, ok := k.keys[kid]; ok {
			return key, true
		}
		min := k.MinRefresh
		if min <= 0 {
			min = 5 * time.Second
		}
		if k.keys != nil && time.Since(k.fetched) < min {
			return paytoken.Key{}, false
		}
		if err := k.refresh(ctx); err != nil {
			return paytoken.Key{}, false
		}
		key, ok := k.keys[kid]
		return key, ok
	}
}

// Refresh fetches every registry's keys now.
func (k *KeyCache) Refresh(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.refresh(ctx)
}

func (k *KeyCache) refresh(ctx context.Context) error {
	keys := map[string]paytoken.Key{}
	for _, r := range k.Registries {
		info, err := r.Node(ctx)
		if err != nil {
			return err
		}
		jwks, err := r.JWKS(ctx)
		if err != nil {
			return err
		}
		issuer := "spiffe://" + info.TrustDomain + "/registry/" + info.Registry
		for _, j := range jwks {
			pub, err := base64.RawURLEncoding.DecodeString(j.X)
			if err != nil || j.Kty != "OKP" || j.Crv != "Ed25519" || len(pub) != ed25519.PublicKeySize {
				continue
			}
			// The kid must be the key's own: a JWKS cannot make one key
			// stand in for another.
			if paytoken.KeyID(pub) != j.Kid {
				continue
			}
			keys[j.Kid] = paytoken.Key{Public: pub, Issuer: issuer}
		}
	}
	k.keys, k.fetched = keys, time.Now()
	return nil
}

// PaymentVerifier is net/http middleware that sells a handler's answer:
// a call without a payment token gets 402 with the price; a call with one
// has it verified offline (signature against the cached JWKS, payee,
// expiry, maximum ≥ price, nonce not seen before), is served into a
// buffer, and the answer is released only after the token is settled
// for the price at the payer's registry. If the handler fails (status ≥
// 400) the token is released instead and the failure passed on.
type PaymentVerifier struct {
	Payee      string  // this agent's DID
	PriceUnits int64   // what one call costs
	Currency   string  // e.g. AVT
	Settler    *Client // this agent's authenticated client (settles at its registry)
	Keys       *KeyCache
	Now        func() time.Time

	mu   sync.Mutex
	seen map[string]int64 // nonce → expiry (unix)
}

func (v *PaymentVerifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

// Offer is the verifier's 402 offer.
func (v *PaymentVerifier) Offer() Offer {
	return Offer{Scheme: PaymentScheme, Header: PaymentHeader, Payee: v.Payee, PriceUnits: v.PriceUnits, Currency: v.Currency}
}

func (v *PaymentVerifier) refuse(w http.ResponseWriter, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusPaymentRequired)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"error":   map[string]string{"code": code, "message": msg},
		"payment": v.Offer(),
	})
}

// claim records a nonce as used; false if it was already.
func (v *PaymentVerifier) claim(c paytoken.Claims) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.seen == nil {
		v.seen = map[string]int64{}
	}
	now := v.now().Unix()
	for n, exp := range v.seen {
		if exp <= now {
			delete(v.seen, n)
		}
	}
	if _, dup := v.seen[c.Nonce]; dup {
		return false
	}
	v.seen[c.Nonce] = c.ExpiresAt
	return true
}

// Middleware wraps next.
func (v *PaymentVerifier) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := r.Header.Get(PaymentHeader)
		if tok == "" {
			v.refuse(w, "payment_required", fmt.Sprintf("this call costs %d base units of %s; pay with a payment token for %s", v.PriceUnits, v.Currency, v.Payee))
			return
		}
		ctx := r.Context()
		if code, err := v.Accept(ctx, tok); err != nil {
			v.refuse(w, code, err.Error())
			return
		}
		rec := &recorder{header: http.Header{}, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		if err := v.Finish(ctx, tok, rec.status < 400); err != nil {
			v.refuse(w, "payment_not_settled", err.Error())
			return
		}
		rec.flush(w)
	})
}

// Accept verifies tok offline for this verifier's payee and price and
// claims its nonce; code is the refusal's machine-readable reason.
func (v *PaymentVerifier) Accept(ctx context.Context, tok string) (code string, err error) {
	c, err := paytoken.VerifyFor(tok, v.Payee, v.Keys.Lookup(ctx), v.now())
	if err != nil {
		return "payment_invalid", err
	}
	if c.MaxUnits < v.PriceUnits || c.Currency != v.Currency {
		return "payment_insufficient", fmt.Errorf("the token allows %d %s; this call costs %d %s", c.MaxUnits, c.Currency, v.PriceUnits, v.Currency)
	}
	if !v.claim(c) {
		return "payment_replayed", fmt.Errorf("this payment token was already presented")
	}
	return "", nil
}

// Finish settles an accepted token for the price when the call was
// served, or releases it when it was not. An error means the caller must
// not hand out the answer.
func (v *PaymentVerifier) Finish(ctx context.Context, tok string, served bool) error {
	ctx = context.WithoutCancel(ctx)
	if !served {
		_ = v.Settler.ReleasePayment(ctx, tok)
		return nil
	}
	_, err := v.Settler.SettlePayment(ctx, tok, v.PriceUnits)
	return err
}

type recorder struct {
	header http.Header
	status int
	wrote  bool
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(s int) {
	if !r.wrote {
		r.status, r.wrote = s, true
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.body.Write(b)
}

func (r *recorder) flush(w http.ResponseWriter) {
	for k, vs := range r.header {
		w.Header()[k] = vs
	}
	w.WriteHeader(r.status)
	_, _ = w.Write(r.body.Bytes())
}
