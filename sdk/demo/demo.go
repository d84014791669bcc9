// Package demo is the paid-call walkthrough built only on package sdk and
// the public API, as any agent developer would write it: a developer signs
// up, registers a service agent selling one call and a client agent, funds
// the client, and the client pays for the call through PayFor while the
// service sells it through PaymentVerifier. The example program
// (sdk/examples/paidcall) and the SDK's end-to-end test run it.
package demo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/theprotocol-dev/theprotocol/sdk"
)

// Config says where the demo runs.
type Config struct {
	API string // the registry's base URL
	// Admin funds the developer and the client (dev stacks only; a real
	// developer buys AVT instead).
	AdminClientID, AdminClientSecret string
	PriceUnits                       int64 // one call's price (0: 1 AVT)
	ClientFunds                      int64 // granted to the client (0: ten prices)
	Log                              func(format string, args ...any)
	// ServiceAPI, when set, is another registry of the same frame where
	// the service agent lives (its own developer signs up there, funded
	// by a cross-registry transfer from the first developer): the paid
	// calls then settle across registries.
	ServiceAPI string
}

// Result is what happened, for the caller to check.
type Result struct {
	Service, Client           string // DIDs
	ServiceURL                string
	First                     int // the unpaid attempt's status (402)
	Answer                    string
	Token                     string
	PriceUnits                int64
	ClientBefore, ClientAfter int64 // liquid units
	ServiceBefore, ServiceAft int64
	Replay                    int // the status of presenting the same token again
	// A2AAnswer is the paid message/send answer; the After balances
	// include it (two paid calls in all).
	A2AAnswer string
	// Stop ends the service agent's server.
	Stop func()
	// ClientAgent and ServiceAgent are the agents' authenticated clients.
	ClientAgent, ServiceAgent *sdk.Client
}

// Run walks through one paid call.
func Run(ctx context.Context, cfg Config) (Result, error) {
	logf := cfg.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	price := cfg.PriceUnits
	if price == 0 {
		price = 100_000_000
	}
	api := sdk.New(cfg.API)
	node, err := api.Node(ctx)
	if err != nil {
		return Result{}, err
	}
	admin := api.Agent(cfg.AdminClientID, cfg.AdminClientSecret)

	dev, err := api.SignUp(ctx, "Demo developer", fmt.Sprintf("demo-%d@example.org", time.Now().UnixNano()))
	if err != nil {
		return Result{}, fmt.Errorf("sign up: %w", err)
	}
	devc := api.Developer(dev.APIKey)
	// Two reputation bonds of 50 AVT come from the developer's wallet
	// (and 100 AVT more for the service's developer on another registry).
	if err := admin.Grant(ctx, dev.AccountID, 300*100_000_000, "demo developer"); err != nil {
		return Result{}, fmt.Errorf("fund developer: %w", err)
	}
	svcAPI, svcDev := api, devc
	if cfg.ServiceAPI != "" && cfg.ServiceAPI != cfg.API {
		if svcAPI, svcDev, err = serviceDeveloper(ctx, devc, cfg.ServiceAPI, logf); err != nil {
			return Result{}, err
		}
	}
	svcCreds, err := svcDev.RegisterAgent(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("register service agent: %w", err)
	}
	cliCreds, err := devc.RegisterAgent(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("register client agent: %w", err)
	}
	funds := cfg.ClientFunds
	if funds == 0 {
		funds = 10 * price
	}
	if err := admin.Grant(ctx, cliCreds.DID, funds, "demo client"); err != nil {
		return Result{}, fmt.Errorf("fund client: %w", err)
	}
	svc := svcAPI.Agent(svcCreds.ClientID, svcCreds.ClientSecret)
	cli := api.Agent(cliCreds.ClientID, cliCreds.ClientSecret)
	logf("service agent %s on %s, client agent %s on %s", svcCreds.DID, svcAPI.BaseURL, cliCreds.DID, node.Registry)

	// The service agent sells one answer. It accepts tokens of the
	// registries it trusts: its own and, across registries, the payer's.
	keys := &sdk.KeyCache{Registries: []*sdk.Client{sdk.New(svcAPI.BaseURL)}}
	if svcAPI != api {
		keys.Registries = append(keys.Registries, sdk.New(cfg.API))
	}
	verifier := &sdk.PaymentVerifier{
		Payee: svcCreds.DID, PriceUnits: price, Currency: node.Currency, Settler: svc, Keys: keys,
	}
	mux := http.NewServeMux()
	mux.Handle("/answer", verifier.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("42"))
	})))
	// The same service over A2A JSON-RPC (message/send), same price.
	mux.Handle("/a2a", &sdk.A2AHandler{Verifier: verifier, Handle: func(_ context.Context, in sdk.A2AMessage) (sdk.A2AMessage, error) {
		return sdk.A2AMessage{Parts: []sdk.A2APart{{Kind: "text", Text: "you said: " + in.Text()}}}, nil
	}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return Result{}, err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	res := Result{Service: svcCreds.DID, Client: cliCreds.DID, ServiceURL: "http://" + ln.Addr().String() + "/answer", PriceUnits: price,
		Stop: func() { _ = srv.Close() }, ClientAgent: cli, ServiceAgent: svc}

	balance := func(c *sdk.Client, did string) int64 {
		b, err := c.Balance(ctx, did)
		if err != nil {
			return -1
		}
		return b.Liquid()
	}
	res.ClientBefore, res.ServiceBefore = balance(cli, cliCreds.DID), balance(svc, svcCreds.DID)

	paid, err := cli.PayFor(ctx, sdk.Call{Method: http.MethodGet, URL: res.ServiceURL, MaxUnits: 2 * price})
	if err != nil {
		res.Stop()
		return res, fmt.Errorf("paid call: %w", err)
	}
	if paid.Offer == nil || !paid.Charged {
		res.Stop()
		return res, errors.New("the call was not charged")
	}
	res.First, res.Answer, res.Token = http.StatusPaymentRequired, string(paid.Body), paid.Token.Token
	logf("answer %q for %d units", res.Answer, paid.Offer.PriceUnits)

	// Presenting the same token again is refused.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, res.ServiceURL, nil)
	req.Header.Set(sdk.PaymentHeader, res.Token)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		res.Replay = resp.StatusCode
		resp.Body.Close()
	}
	a2a, err := cli.SendMessage(ctx, "http://"+ln.Addr().String()+"/a2a", "hello", 2*price)
	if err != nil {
		res.Stop()
		return res, fmt.Errorf("paid A2A message: %w", err)
	}
	res.A2AAnswer = a2a.Text()
	res.ClientAfter, res.ServiceAft = balance(cli, cliCreds.DID), balance(svc, svcCreds.DID)
	if svcAPI != api {
		// Across registries the payee is credited when the settlement
		// commits, shortly after the answer: wait for both credits (each
		// is the price less a fee well under 1 %).
		for deadline := time.Now().Add(90 * time.Second); res.ServiceAft-res.ServiceBefore < 2*(price-price/100) && time.Now().Before(deadline); {
			if err := pause(ctx, 100*time.Millisecond); err != nil {
				res.Stop()
				return res, err
			}
			res.ServiceAft = balance(svc, svcCreds.DID)
		}
		res.ClientAfter = balance(cli, cliCreds.DID)
	}
	return res, nil
}

// serviceDeveloper signs a developer up on the registry at apiURL and
// funds its wallet with 100 AVT from the first developer (a
// cross-registry transfer), for the service agent's bond there.
func serviceDeveloper(ctx context.Context, payer *sdk.Client, apiURL string, logf func(string, ...any)) (*sdk.Client, *sdk.Client, error) {
	api := sdk.New(apiURL)
	dev, err := api.SignUp(ctx, "Demo service developer", fmt.Sprintf("demo-svc-%d@example.org", time.Now().UnixNano()))
	if err != nil {
		return nil, nil, fmt.Errorf("sign up on %s: %w", apiURL, err)
	}
	devc := api.Developer(dev.APIKey)
	const funds = 100 * 100_000_000
	if _, err := payer.Transfer(ctx, dev.AccountID, funds, "demo service developer"); err != nil {
		return nil, nil, fmt.Errorf("fund the service developer: %w", err)
	}
	for deadline := time.Now().Add(90 * time.Second); ; {
		b, err := devc.Balance(ctx, dev.AccountID)
		if err == nil && b.Liquid() >= funds-funds/100 { // less the receiving registry's fee
			break
		}
		if time.Now().After(deadline) {
			return nil, nil, fmt.Errorf("the service developer's funds did not arrive on %s", apiURL)
		}
		if err := pause(ctx, 100*time.Millisecond); err != nil {
			return nil, nil, err
		}
	}
	logf("service developer %s funded on %s", dev.AccountID, apiURL)
	return api, devc, nil
}

// pause waits d, or returns the context's error as soon as it is done: the
// demo's waits for a settlement must not outlive a stopping dev stack.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
