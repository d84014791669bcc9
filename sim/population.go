package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/registry"
)

// bondUnits is what a developer wallet gives each new agent (its
// reputation bond).
const bondUnits = registry.DefaultBondUnits

// agentsPerDeveloper bounds how many agents one developer signs up.
const agentsPerDeveloper = 8

func (s *Sim) reg(id string) Registry {
	for _, r := range s.cfg.Target.Registries {
		if r.ID == id {
			return r
		}
	}
	return Registry{}
}

// populate signs developers up and creates agents on every registry whose
// treasury can fund them (the mainframes), through the public API as a
// user would, and funds each agent with a treasury grant. Registries that
// cannot fund agents (the mainframe alone holds a frame's genesis supply,
// and a cross-registry transfer only reaches agent accounts) get
// receivers: agent accounts opened on their TEG, which cross-registry
// transfers pay.
func (s *Sim) populate(ctx context.Context) error {
	var funded, unfunded []Registry
	for _, r := range s.cfg.Target.Registries {
		if !r.HasRole("registry") || !r.HasRole("teg") {
			continue
		}
		tok, err := s.adminToken(ctx, r)
		if err != nil {
			return err
		}
		s.admins[r.ID] = tok
		if r.Mainframe {
			funded = append(funded, r)
		} else {
			unfunded = append(unfunded, r)
		}
	}
	if len(funded) == 0 {
		return fmt.Errorf("no mainframe with registry and TEG roles to fund agents from")
	}
	per := make([]int, len(funded))
	for i := range s.cfg.Agents {
		per[i%len(funded)]++
	}
	var mu sync.Mutex
	errs := make(chan error, len(funded))
	var wg sync.WaitGroup
	for i, r := range funded {
		wg.Add(1)
		go func() {
			defer wg.Done()
			list, err := s.createAgents(ctx, r, per[i])
			if err != nil {
				errs <- fmt.Errorf("%s: %w", r.ID, err)
				return
			}
			mu.Lock()
			s.agents[r.ID] = list
			s.senders = append(s.senders, list...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	for _, r := range unfunded {
		n := max(2, s.cfg.Agents/4)
		list, err := s.openReceivers(ctx, r, n)
		if err != nil {
			return fmt.Errorf("%s: %w", r.ID, err)
		}
		s.receivers[r.ID] = list
	}
	for _, a := range s.senders {
		for reg := range s.receivers {
			if s.reg(reg).Frame == a.Frame {
				s.crossFrom = append(s.crossFrom, a)
				break
			}
		}
	}
	return nil
}

func (s *Sim) adminToken(ctx context.Context, r Registry) (string, error) {
	if r.AdminCredentials == "" {
		return "", fmt.Errorf("registry %s: the endpoints name no admin credentials file (the dev stack writes one)", r.ID)
	}
	raw, err := os.ReadFile(r.AdminCredentials)
	if err != nil {
		return "", fmt.Errorf("registry %s admin credentials: %w", r.ID, err)
	}
	var creds struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if err := json.Unmarshal(raw, &creds); err != nil {
		return "", fmt.Errorf("registry %s admin credentials: %w", r.ID, err)
	}
	return s.token(ctx, r, map[string]string{"grant_type": "client_credentials", "client_id": creds.ClientID, "client_secret": creds.ClientSecret})
}

func (s *Sim) token(ctx context.Context, r Registry, grant map[string]string) (string, error) {
	c := s.setup.do(ctx, "token", http.MethodPost, r.APIURL+"/api/v1/auth/token", "", "", grant)
	if c.Status != http.StatusOK {
		return "", c.err("token")
	}
	var t struct {
		AccessToken string `json:"access_token"`
	}
	if err := c.decode(&t); err != nil {
		return "", err
	}
	return t.AccessToken, nil
}

func (s *Sim) grant(ctx context.Context, r Registry, to string, units int64) error {
	c := s.setup.do(ctx, "grant", http.MethodPost, r.APIURL+"/api/v1/admin/grants", s.admins[r.ID], idemKey(),
		map[string]any{"to": to, "amount_units": units, "reason": "simulation " + s.runID})
	if c.Status != http.StatusCreated {
		return c.err("grant to " + to)
	}
	return nil
}

// createAgents makes n agents on r: developers (each funded with its
// agents' bonds), agents under them, each granted FundUnits.
func (s *Sim) createAgents(ctx context.Context, r Registry, n int) ([]*Account, error) {
	api := r.APIURL + "/api/v1"
	var out []*Account
	for d := 0; len(out) < n; d++ {
		k := min(agentsPerDeveloper, n-len(out))
		c := s.setup.do(ctx, "signup", http.MethodPost, api+"/developers", "", idemKey(),
			map[string]string{"name": fmt.Sprintf("sim %s %d", s.runID, d), "email": fmt.Sprintf("sim-%s-%s-%d@example.org", s.runID, r.ID, d)})
		if c.Status != http.StatusCreated {
			return nil, c.err("sign up")
		}
		var dev struct {
			AccountID string `json:"account_id"`
			APIKey    string `json:"api_key"`
		}
		if err := c.decode(&dev); err != nil {
			return nil, err
		}
		devTok, err := s.token(ctx, r, map[string]string{"grant_type": "api_key", "api_key": dev.APIKey})
		if err != nil {
			return nil, err
		}
		if err := s.grant(ctx, r, dev.AccountID, int64(k)*bondUnits); err != nil {
			return nil, err
		}
		for range k {
			c := s.setup.do(ctx, "bootstrap", http.MethodPost, api+"/bootstrap-tokens", devTok, idemKey(), map[string]any{})
			if c.Status != http.StatusCreated {
				return nil, c.err("bootstrap token")
			}
			var bt struct {
				Token string `json:"bootstrap_token"`
			}
			if err := c.decode(&bt); err != nil {
				return nil, err
			}
			c = s.setup.do(ctx, "agent", http.MethodPost, api+"/agents", bt.Token, idemKey(), map[string]any{})
			if c.Status != http.StatusCreated {
				return nil, c.err("create agent")
			}
			var ag struct {
				DID          string `json:"did"`
				ClientID     string `json:"client_id"`
				ClientSecret string `json:"client_secret"`
			}
			if err := c.decode(&ag); err != nil {
				return nil, err
			}
			tok, err := s.token(ctx, r, map[string]string{"grant_type": "client_credentials", "client_id": ag.ClientID, "client_secret": ag.ClientSecret})
			if err != nil {
				return nil, err
			}
			a := &Account{Frame: r.Frame, Registry: r.ID, ID: ag.DID, Token: tok}
			if err := s.grant(ctx, r, a.ID, s.cfg.FundUnits); err != nil {
				return nil, err
			}
			s.model.credit(a, s.cfg.FundUnits)
			out = append(out, a)
		}
	}
	return out, nil
}

// openReceivers opens n agent accounts on r's TEG directly: a registry
// other than its frame's mainframe starts without money, and neither a
// treasury grant nor a cross-registry transfer (which pays agents only)
// can fund a developer there, so no agent can be created on it through
// the API. An opened account is what the registry's onboarding opens for
// an agent; it only receives.
func (s *Sim) openReceivers(ctx context.Context, r Registry, n int) ([]*Account, error) {
	name := r.Databases["teg"]
	if name == "" {
		return nil, fmt.Errorf("the endpoints name no TEG database")
	}
	url, err := s.cfg.Target.dbURL(name)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	st := ledgerstore.New(pool, ledgerstore.Options{Frame: r.Frame, Registry: r.ID})
	var out []*Account
	for range n {
		a := &Account{Frame: r.Frame, Registry: r.ID, ID: registry.NewDID()}
		if _, _, err := st.OpenAccount(ctx, a.ID, ledger.KindAgent); err != nil {
			return nil, fmt.Errorf("open receiver %s: %w", a.ID, err)
		}
		s.model.credit(a, 0)
		out = append(out, a)
	}
	return out, nil
}
