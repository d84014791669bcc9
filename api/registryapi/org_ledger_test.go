package registryapi_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/api/registryapi"
	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/registry"
)

// TestOrganisations: an organisation owns an agent through a bootstrap
// token; accepted members manage it, removed members and outsiders cannot.
func TestOrganisations(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil)
	_, _, ownerTok := n.developer(t)
	memberID, _, memberTok := n.developer(t)
	_, _, outsiderTok := n.developer(t)

	r := n.do(t, req{Method: "POST", Path: "/api/v1/organisations", Token: ownerTok, Body: map[string]string{"name": "Acme"}})
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	org := r.Str(t, "organisation_id")
	orgPath := "/api/v1/organisations/" + org

	// Invitation: only owners invite; pending invitees are not members yet.
	r = n.do(t, req{Method: "POST", Path: orgPath + "/members", Token: outsiderTok, Body: map[string]string{"developer_id": memberID}})
	require.Equal(t, http.StatusForbidden, r.Status, "%s", r.Body)
	r = n.do(t, req{Method: "POST", Path: orgPath + "/members", Token: ownerTok, Body: map[string]string{"developer_id": memberID}})
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	r = n.do(t, req{Method: "POST", Path: "/api/v1/bootstrap-tokens", Token: memberTok, Body: map[string]string{"organisation_id": org}})
	require.Equal(t, http.StatusForbidden, r.Status, "pending invitee: %s", r.Body)
	r = n.do(t, req{Method: "POST", Path: orgPath + "/members/accept", Token: memberTok})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	r = n.do(t, req{Method: "GET", Path: orgPath, Token: memberTok})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Len(t, r.JSON(t)["members"], 2)
	r = n.do(t, req{Method: "GET", Path: orgPath, Token: outsiderTok})
	require.Equal(t, http.StatusForbidden, r.Status)

	// The owner creates an agent owned by the organisation.
	bt := n.bootstrap(t, ownerTok, map[string]string{"organisation_id": org})
	r = n.do(t, req{Method: "POST", Path: "/api/v1/agents", Token: bt, Body: map[string]any{"card": card("Org agent", "ops")}})
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	did := r.Str(t, "did")
	r = n.do(t, req{Method: "GET", Path: "/api/v1/agents/" + did, Token: outsiderTok})
	require.Equal(t, org, r.Str(t, "organisation_id"))

	// A member manages it; an outsider cannot.
	r = n.do(t, req{Method: "PUT", Path: "/api/v1/agents/" + did + "/card", Token: memberTok, Body: card("Renamed", "ops")})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	r = n.do(t, req{Method: "POST", Path: "/api/v1/agents/" + did + "/credentials", Token: memberTok})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	r = n.do(t, req{Method: "POST", Path: "/api/v1/agents/" + did + "/credentials", Token: outsiderTok})
	require.Equal(t, http.StatusForbidden, r.Status, "%s", r.Body)

	// Removed members lose the right at once; the last owner cannot leave.
	r = n.do(t, req{Method: "DELETE", Path: orgPath + "/members/" + memberID, Token: ownerTok})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	r = n.do(t, req{Method: "DELETE", Path: "/api/v1/agents/" + did, Token: memberTok})
	require.Equal(t, http.StatusForbidden, r.Status, "%s", r.Body)
	ownerID := n.do(t, req{Method: "GET", Path: "/api/v1/developers/me", Token: ownerTok}).Str(t, "developer_id")
	r = n.do(t, req{Method: "DELETE", Path: orgPath + "/members/" + ownerID, Token: ownerTok})
	require.Equal(t, http.StatusUnprocessableEntity, r.Status, "%s", r.Body)

	types := n.outboxTypes(t)
	for _, want := range []string{"OrganisationCreated", "OrganisationMemberInvited", "OrganisationMemberJoined", "OrganisationMemberRemoved"} {
		require.Contains(t, types, want)
	}
}

type fakeLedger struct {
	mu       sync.Mutex
	accounts map[string]string
	err      error
}

func (l *fakeLedger) OpenAccount(_ context.Context, id, kind string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return l.err
	}
	if l.accounts == nil {
		l.accounts = map[string]string{}
	}
	l.accounts[id] = kind
	return nil
}

type fakeBond struct {
	mu           sync.Mutex
	locked, void []registry.BondRequest
	err          error
}

func (b *fakeBond) LockBond(_ context.Context, r registry.BondRequest) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return b.err
	}
	b.locked = append(b.locked, r)
	return nil
}

func (b *fakeBond) VoidBond(_ context.Context, r registry.BondRequest) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.void = append(b.void, r)
	return nil
}

// TestLedgerHooks: accounts are opened before identities commit, a ledger
// failure creates nothing, and the bond extension point is called (and
// voided when the creation does not commit).
func TestLedgerHooks(t *testing.T) {
	t.Parallel()
	ledger := &fakeLedger{}
	bond := &fakeBond{}
	n := startNode(t, func(o *registryapi.Options) { o.Ledger, o.Bond = ledger, bond })
	devID, _, devTok := n.developer(t)
	did, _, _ := n.agent(t, devTok, nil)
	require.Equal(t, map[string]string{"dev:" + devID: "developer", did: "agent"}, ledger.accounts)
	require.Len(t, bond.locked, 1)
	require.Equal(t, registry.BondRequest{AgentDID: did, DeveloperAccountID: "dev:" + devID, AmountUnits: 50 * 100_000_000, IdempotencyKey: "bond-lock-" + did}, bond.locked[0])

	// A short wallet: 422, no agent, the token still usable.
	bond.err = apperr.New(apperr.InsufficientFunds, "the developer wallet holds less than the 50 AVT bond")
	bt := n.bootstrap(t, devTok, nil)
	r := n.do(t, req{Method: "POST", Path: "/api/v1/agents", Token: bt})
	require.Equal(t, http.StatusUnprocessableEntity, r.Status, "%s", r.Body)
	require.Equal(t, "insufficient_funds", r.ErrCode(t))
	require.Equal(t, 1, n.countRows(t, "agents"))
	bond.err = nil

	// The ledger down: 503, nothing created.
	ledger.err = errors.New("connection refused")
	r = n.do(t, req{Method: "POST", Path: "/api/v1/agents", Token: bt})
	require.Equal(t, http.StatusServiceUnavailable, r.Status, "%s", r.Body)
	r = n.do(t, req{Method: "POST", Path: "/api/v1/developers", Body: map[string]string{"name": "X", "email": "x@example.org"}})
	require.Equal(t, http.StatusServiceUnavailable, r.Status, "%s", r.Body)
	require.Equal(t, 1, n.countRows(t, "agents"))
	require.Equal(t, 1, n.countRows(t, "developers"))
	ledger.err = nil

	// The registry transaction fails after the bond was locked (a
	// suspended developer): the bond is voided.
	_, err := n.DB.Pool.Exec(context.Background(), `UPDATE developers SET suspended_at = now()`)
	require.NoError(t, err)
	r = n.do(t, req{Method: "POST", Path: "/api/v1/agents", Token: bt})
	require.Equal(t, http.StatusForbidden, r.Status, "%s", r.Body)
	require.Len(t, bond.void, 1)
	require.Equal(t, bond.locked[1].AgentDID, bond.void[0].AgentDID)
}
