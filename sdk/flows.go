package sdk

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// SignUp registers a developer (the API key in the answer is shown once).
// Sign-up needs a long Idempotency-Key; this one is random per call.
func (c *Client) SignUp(ctx context.Context, name, email string) (Developer, error) {
	var d Developer
	err := c.do(ctx, http.MethodPost, "/api/v1/developers", map[string]string{"name": name, "email": email}, &d,
		callOpts{idemKey: NewIdempotencyKey() + NewIdempotencyKey(), noAuth: true})
	return d, err
}

// Developer returns a client acting as the developer of apiKey.
func (c *Client) Developer(apiKey string) *Client {
	return c.WithAuth(&APIKey{Client: New(c.BaseURL), Key: apiKey})
}

// Agent returns a client acting as the agent (or admin client) of these
// credentials; its token is fetched on first use and refreshed before it
// expires or when refused.
func (c *Client) Agent(clientID, clientSecret string) *Client {
	return c.WithAuth(&ClientCredentials{Client: New(c.BaseURL), ClientID: clientID, ClientSecret: clientSecret})
}

// RegisterAgent registers an agent under the calling developer: it asks
// for a bootstrap token and spends it at POST /agents. The agent's
// reputation bond is locked from the developer's wallet.
func (c *Client) RegisterAgent(ctx context.Context) (AgentCredentials, error) {
	var bt struct {
		Token string `json:"bootstrap_token"`
	}
	if err := c.Do(ctx, http.MethodPost, "/api/v1/bootstrap-tokens", map[string]any{}, &bt); err != nil {
		return AgentCredentials{}, err
	}
	var ag AgentCredentials
	err := c.do(ctx, http.MethodPost, "/api/v1/agents", map[string]any{}, &ag, callOpts{idemKey: NewIdempotencyKey(), bearer: bt.Token})
	return ag, err
}

// Transfer sends amountUnits to to (here or on a peer registry), retrying
// transient failures with one Idempotency-Key: it is applied once.
func (c *Client) Transfer(ctx context.Context, to string, amountUnits int64, memo string) (Transfer, error) {
	var t Transfer
	err := c.Do(ctx, http.MethodPost, "/api/v1/transfers", map[string]any{"to": to, "amount_units": amountUnits, "memo": memo}, &t)
	return t, err
}

// Grant moves treasury funds to an account (an admin client only).
func (c *Client) Grant(ctx context.Context, to string, amountUnits int64, reason string) error {
	return c.Do(ctx, http.MethodPost, "/api/v1/admin/grants", map[string]any{"to": to, "amount_units": amountUnits, "reason": reason}, nil)
}

// Balance returns an account's balances.
func (c *Client) Balance(ctx context.Context, account string) (Balance, error) {
	var b Balance
	err := c.Do(ctx, http.MethodGet, "/api/v1/agents/"+url.PathEscape(account)+"/balance", nil, &b)
	return b, err
}

// Node returns who the registry is.
func (c *Client) Node(ctx context.Context) (NodeInfo, error) {
	var n NodeInfo
	err := c.Do(ctx, http.MethodGet, "/api/v1/node", nil, &n)
	return n, err
}

// JWKS returns the registry's public keys.
func (c *Client) JWKS(ctx context.Context) ([]JWK, error) {
	var out struct {
		Keys []JWK `json:"keys"`
	}
	err := c.do(ctx, http.MethodGet, "/api/v1/auth/jwks.json", nil, &out, callOpts{noAuth: true})
	return out.Keys, err
}

// IssuePaymentToken reserves up to maxUnits for payee and returns the
// signed token (the caller is the payer).
func (c *Client) IssuePaymentToken(ctx context.Context, payee string, maxUnits int64, ttl time.Duration, description string) (PaymentToken, error) {
	body := map[string]any{"payee": payee, "max_amount_units": maxUnits, "description": description}
	if ttl > 0 {
		body["expires_in_seconds"] = int64(ttl / time.Second)
	}
	var t PaymentToken
	err := c.Do(ctx, http.MethodPost, "/api/v1/payments/tokens", body, &t)
	return t, err
}

// SettlePayment settles token for amountUnits (the caller is the payee).
func (c *Client) SettlePayment(ctx context.Context, token string, amountUnits int64) (Settlement, error) {
	var s Settlement
	err := c.Do(ctx, http.MethodPost, "/api/v1/payments/settle", map[string]any{"token": token, "amount_units": amountUnits}, &s)
	return s, err
}

// ReleasePayment releases token's reservation (payee or payer).
func (c *Client) ReleasePayment(ctx context.Context, token string) error {
	return c.Do(ctx, http.MethodPost, "/api/v1/payments/release", map[string]any{"token": token}, nil)
}
