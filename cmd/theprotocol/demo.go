package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/theprotocol-dev/theprotocol/node"
	"github.com/theprotocol-dev/theprotocol/sdk"
	"github.com/theprotocol-dev/theprotocol/sdk/demo"
)

// startDemoAgents runs dev's demonstration agents: the client agent on the
// first mainframe registry that issues payment tokens (its treasury funds
// it), the service agent on another registry of the same frame when there
// is one (alpha-op1 in the dev topology), so the calls settle across
// registries; the SDK walkthrough once, then the client agent pays the
// service agent's call every interval. Failures are logged, never fatal;
// the returned func stops it.
func startDemoAgents(ctx context.Context, nodes []*node.Node, dataDir string, interval time.Duration, log *slog.Logger) func() {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		runDemoAgents(ctx, nodes, dataDir, interval, log.With("component", "demo-agents"))
	}()
	return func() { cancel(); wg.Wait() }
}

func runDemoAgents(ctx context.Context, nodes []*node.Node, dataDir string, interval time.Duration, log *slog.Logger) {
	var api, reg, frame string
	for _, n := range nodes {
		if n.PaidCalls == nil {
			continue
		}
		info, err := sdk.New(n.URL()).Node(ctx)
		if err == nil && info.Mainframe {
			api, reg, frame = n.URL(), info.Registry, info.Frame
			break
		}
	}
	if api == "" {
		log.Warn("no mainframe registry issues payment tokens: demonstration agents off")
		return
	}
	serviceAPI, serviceReg := api, reg
	for _, n := range nodes {
		if n.PaidCalls == nil || n.PaidCalls.Cross == nil || n.URL() == api {
			continue
		}
		info, err := sdk.New(n.URL()).Node(ctx)
		if err == nil && info.Frame == frame && !info.Mainframe {
			serviceAPI, serviceReg = n.URL(), info.Registry
			break
		}
	}
	var creds struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	raw, err := os.ReadFile(node.AdminCredentialsFile(dataDir, reg))
	if err == nil {
		err = json.Unmarshal(raw, &creds)
	}
	if err != nil {
		log.Warn("demonstration agents need the dev admin credentials", "err", err)
		return
	}
	res, err := demo.Run(ctx, demo.Config{API: api, ServiceAPI: serviceAPI, AdminClientID: creds.ClientID, AdminClientSecret: creds.ClientSecret,
		ClientFunds: 1000 * 100_000_000, Log: func(f string, a ...any) { log.Info("demo", "msg", fmt.Sprintf(f, a...)) }})
	if res.Stop != nil {
		defer res.Stop()
	}
	if err != nil {
		log.Warn("demonstration agents", "err", err)
		return
	}
	log.Info("demonstration agents running", "registry", reg, "service_registry", serviceReg, "service", res.Service, "client", res.Client,
		"price_units", res.PriceUnits, "every", interval)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p, err := res.ClientAgent.PayFor(ctx, sdk.Call{Method: http.MethodGet, URL: res.ServiceURL, MaxUnits: res.PriceUnits})
		if err != nil || !p.Charged {
			log.Warn("demo paid call", "err", err, "status", p.Status)
			continue
		}
		log.Info("demo paid call", "answer", string(p.Body), "hold", p.Token.HoldID, "units", p.Offer.PriceUnits)
	}
}
