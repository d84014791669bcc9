// Command paidcall runs one paid agent call against a running registry
// (`theprotocol dev`): a developer signs up, registers a service agent
// that sells an answer through sdk.PaymentVerifier and a client agent that
// buys it with Client.PayFor; it prints the 402, the answer and both
// balances.
//
//	go run ./sdk/examples/paidcall -api http://127.0.0.1:8080 \
//	    -admin-credentials .theprotocol/alpha-op1/admin-credentials.json
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"

	"github.com/theprotocol-dev/theprotocol/sdk/demo"
)

func main() {
	api := flag.String("api", "http://127.0.0.1:8080", "the registry's API base URL")
	credsFile := flag.String("admin-credentials", "", "the dev admin client file that funds the demo (written by `theprotocol dev`)")
	price := flag.Int64("price-units", 100_000_000, "one call's price in base units")
	flag.Parse()
	var creds struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	raw, err := os.ReadFile(*credsFile)
	if err != nil {
		log.Fatalf("read admin credentials: %v", err)
	}
	if err := json.Unmarshal(raw, &creds); err != nil {
		log.Fatalf("admin credentials: %v", err)
	}
	res, err := demo.Run(context.Background(), demo.Config{
		API: *api, AdminClientID: creds.ClientID, AdminClientSecret: creds.ClientSecret, PriceUnits: *price, Log: log.Printf,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer res.Stop()
	fmt.Printf("first attempt: %d Payment Required\nanswer: %s\nsame token again: %d\nA2A answer: %s\nclient paid (two calls): %d units\nservice received: %d units\n",
		res.First, res.Answer, res.Replay, res.A2AAnswer, res.ClientBefore-res.ClientAfter, res.ServiceAft-res.ServiceBefore)
}
