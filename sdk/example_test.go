package sdk_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/theprotocol-dev/theprotocol/sdk"
	"github.com/theprotocol-dev/theprotocol/sdk/apiclient"
)

// The generated client reaches every operation of the document; the SDK
// client gives it token refresh, Idempotency-Keys and retries.
func ExampleClient_API() {
	ctx := context.Background()
	agent := sdk.New("http://127.0.0.1:8080").Agent("tpc_...", "tps_...")
	res, err := agent.API().CreateHoldWithResponse(ctx, &apiclient.CreateHoldParams{IdempotencyKey: sdk.NewIdempotencyKey()},
		apiclient.HoldRequest{To: "did:theprotocol:...", AmountUnits: ptr(int64(5 * 100_000_000))})
	if err := sdk.CheckResult(res, err); err != nil {
		log.Fatal(err) // *sdk.APIError: status, code, message
	}
	fmt.Println(res.JSON201.Id)
}

func ptr[T any](v T) *T { return &v }

// An agent enrols for an SVID and serves its A2A endpoint to
// authenticated agents only; another agent calls it over mutual TLS.
func ExampleA2AAuthenticator() {
	ctx := context.Background()
	registry := sdk.New("http://127.0.0.1:8080")

	// The callee.
	me := registry.Agent("tpc_...", "tps_...")
	auth := &sdk.A2AAuthenticator{Client: me, DID: "did:theprotocol:..."}
	if err := auth.Enrol(ctx); err != nil {
		log.Fatal(err)
	}
	go auth.Run(ctx) // renew before expiry
	tlsCfg, err := auth.ServerTLSConfig()
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Addr: ":8443", TLSConfig: tlsCfg, ReadHeaderTimeout: 5 * time.Second,
		Handler: &sdk.A2AHandler{Callers: auth, Handle: func(ctx context.Context, in sdk.A2AMessage) (sdk.A2AMessage, error) {
			caller, _ := sdk.CallerDID(ctx)
			return sdk.A2AMessage{Parts: []sdk.A2APart{{Kind: "text", Text: "hello " + caller}}}, nil
		}}}
	go func() { _ = srv.ListenAndServeTLS("", "") }()

	// The caller (another agent with its own authenticator) pins the
	// callee's DID.
	caller := &sdk.A2AAuthenticator{Client: registry.Agent("tpc_...", "tps_..."), DID: "did:theprotocol:..."}
	c, err := caller.A2AClient(caller.Client, auth.DID)
	if err != nil {
		log.Fatal(err)
	}
	answer, err := c.SendMessage(ctx, "https://callee.example:8443", "hi", 0)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(answer.Text())
}
