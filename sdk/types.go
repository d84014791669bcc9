package sdk

import "time"

// The API's request and response bodies used by the SDK (the shapes of
// the OpenAPI document's schemas of the same names).

// TokenResponse is POST /auth/token.
type TokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope"`
}

// Developer is POST /developers (the API key is shown once).
type Developer struct {
	DeveloperID string `json:"developer_id"`
	AccountID   string `json:"account_id"`
	Name        string `json:"name"`
	Email       string `json:"email"`
	APIKey      string `json:"api_key"`
}

// AgentCredentials is POST /agents (the secret is shown once).
type AgentCredentials struct {
	DID          string `json:"did"`
	HomeRegistry string `json:"home_registry"`
	Frame        string `json:"frame"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

// Transfer is a committed transfer (POST /transfers).
type Transfer struct {
	ID          string    `json:"id"`
	From        string    `json:"from"`
	To          string    `json:"to"`
	AmountUnits int64     `json:"amount_units"`
	FeeUnits    int64     `json:"fee_units"`
	NetUnits    int64     `json:"net_units"`
	Memo        string    `json:"memo,omitempty"`
	Status      string    `json:"status,omitempty"` // cross-registry transfers
	CreatedAt   time.Time `json:"created_at"`
}

// Bucket is one balance bucket.
type Bucket struct {
	Bucket    string `json:"bucket"`
	Units     int64  `json:"units"`
	HeldUnits int64  `json:"held_units"`
}

// Balance is GET /agents/{did}/balance.
type Balance struct {
	Account        string   `json:"account"`
	AvailableUnits int64    `json:"available_units"`
	Buckets        []Bucket `json:"buckets"`
}

// Liquid returns the liquid bucket's units.
func (b Balance) Liquid() int64 {
	for _, x := range b.Buckets {
		if x.Bucket == "liquid" {
			return x.Units
		}
	}
	return 0
}

// PaymentToken is POST /payments/tokens.
type PaymentToken struct {
	Token     string    `json:"token"`
	HoldID    string    `json:"hold_id"`
	Payer     string    `json:"payer"`
	Payee     string    `json:"payee"`
	MaxUnits  int64     `json:"max_units"`
	Currency  string    `json:"currency"`
	ExpiresAt time.Time `json:"expires_at"`
	Nonce     string    `json:"nonce"`
	Registry  string    `json:"registry"`
}

// Settlement is POST /payments/settle.
type Settlement struct {
	HoldID      string `json:"hold_id"`
	TransferID  string `json:"transfer_id"`
	Payer       string `json:"payer"`
	Payee       string `json:"payee"`
	AmountUnits int64  `json:"amount_units"`
	FeeUnits    int64  `json:"fee_units"`
	NetUnits    int64  `json:"net_units"`
	Status      string `json:"status"`
}

// JWK is one key of GET /auth/jwks.json.
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
}

// NodeInfo is GET /node.
type NodeInfo struct {
	Frame       string `json:"frame"`
	Registry    string `json:"registry"`
	Mainframe   bool   `json:"mainframe"`
	TrustDomain string `json:"trust_domain"`
	Currency    string `json:"currency"`
}
