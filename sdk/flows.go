package sdk

import (
	"context"
	"net/http"
	"time"

	"github.com/theprotocol-dev/theprotocol/sdk/apiclient"
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
	api := c.API()
	bt, err := api.CreateBootstrapTokenWithResponse(ctx,
		&apiclient.CreateBootstrapTokenParams{IdempotencyKey: NewIdempotencyKey()}, apiclient.BootstrapTokenRequest{})
	if err := CheckResult(bt, err); err != nil {
		return AgentCredentials{}, err
	}
	tok, err := decoded(bt.JSON201, bt.Body)
	if err != nil {
		return AgentCredentials{}, err
	}
	ag, err := api.CreateAgentWithResponse(ctx, &apiclient.CreateAgentParams{IdempotencyKey: NewIdempotencyKey()},
		apiclient.CreateAgentRequest{}, bearer(tok.BootstrapToken))
	if err := CheckResult(ag, err); err != nil {
		return AgentCredentials{}, err
	}
	a, err := decoded(ag.JSON201, ag.Body)
	if err != nil {
		return AgentCredentials{}, err
	}
	return AgentCredentials{DID: a.Did, HomeRegistry: a.HomeRegistry, Frame: a.Frame, ClientID: a.ClientId, ClientSecret: a.ClientSecret}, nil
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
	res, err := c.API().GetBalanceWithResponse(ctx, account)
	if err := CheckResult(res, err); err != nil {
		return Balance{}, err
	}
	r, err := decoded(res.JSON200, res.Body)
	if err != nil {
		return Balance{}, err
	}
	b := Balance{Account: r.Account, AvailableUnits: r.AvailableUnits}
	for _, x := range r.Buckets {
		b.Buckets = append(b.Buckets, Bucket{Bucket: x.Bucket, Units: x.Units, HeldUnits: x.HeldUnits})
	}
	return b, nil
}

// Node returns who the registry is.
func (c *Client) Node(ctx context.Context) (NodeInfo, error) {
	res, err := c.API().GetNodeWithResponse(ctx)
	if err := CheckResult(res, err); err != nil {
		return NodeInfo{}, err
	}
	n, err := decoded(res.JSON200, res.Body)
	if err != nil {
		return NodeInfo{}, err
	}
	return NodeInfo{Frame: n.Frame, Registry: n.Registry, Mainframe: n.Mainframe, TrustDomain: n.TrustDomain, Currency: n.Currency}, nil
}

// JWKS returns the registry's public keys (an unauthenticated call).
func (c *Client) JWKS(ctx context.Context) ([]JWK, error) {
	res, err := c.api(true).GetJWKSWithResponse(ctx)
	if err := CheckResult(res, err); err != nil {
		return nil, err
	}
	set, err := decoded(res.JSON200, res.Body)
	if err != nil {
		return nil, err
	}
	out := make([]JWK, 0, len(set.Keys))
	for _, k := range set.Keys {
		out = append(out, JWK{Kty: k.Kty, Crv: k.Crv, X: k.X, Kid: k.Kid})
	}
	return out, nil
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
