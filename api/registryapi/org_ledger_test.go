package registryapi_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/theprotocol-dev/theprotocol/api/registryapi"
	"github.com/theprotocol-dev/theprotocol/apperr"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/onboarding"
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

// fakeLedger is the TEG as onboarding sees it, recording accounts and
// bond moves.
type fakeLedger struct {
	mu           sync.Mutex
	accounts     map[string]ledger.Kind
	locked, void []string // "<did> <developer account> <units> <key>"
	err, bondErr error
}

func (l *fakeLedger) OpenAccount(_ context.Context, id string, kind ledger.Kind) (ledgerstore.Account, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return ledgerstore.Account{}, false, l.err
	}
	if l.accounts == nil {
		l.accounts = map[string]ledger.Kind{}
	}
	l.accounts[id] = kind
	return ledgerstore.Account{ID: id, Kind: kind}, true, nil
}

func (l *fakeLedger) LockBond(_ context.Context, did, dev string, units int64, key string) (ledgerstore.BondMove, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.bondErr != nil {
		return ledgerstore.BondMove{}, l.bondErr
	}
	l.locked = append(l.locked, fmt.Sprint(did, " ", dev, " ", units, " ", key))
	return ledgerstore.BondMove{}, nil
}

func (l *fakeLedger) VoidBond(_ context.Context, did, dev string, units int64, key string) (ledgerstore.BondMove, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.void = append(l.void, fmt.Sprint(did, " ", dev, " ", units, " ", key))
	return ledgerstore.BondMove{}, nil
}

// noTemporal accepts every bond workflow start, termination and signal.
type noTemporal struct{ client.Client }

func (noTemporal) ExecuteWorkflow(context.Context, client.StartWorkflowOptions, any, ...any) (client.WorkflowRun, error) {
	return nil, nil
}
func (noTemporal) TerminateWorkflow(context.Context, string, string, string, ...any) error {
	return nil
}
func (noTemporal) SignalWorkflow(context.Context, string, string, string, any) error { return nil }

// TestLedgerHooks: the HTTP answers of onboarding (whose saga is tested in
// package onboarding): accounts are opened before identities commit, a
// short wallet is 422, a ledger down is 503 and creates nothing, and a
// locked bond is voided when the creation does not commit.
func TestLedgerHooks(t *testing.T) {
	t.Parallel()
	l := &fakeLedger{}
	n := startNode(t, func(o *registryapi.Options) {
		o.Onboarding = &onboarding.Service{Registry: o.Store, Ledger: l, Now: o.Now, Log: o.Log,
			Bond: &onboarding.Bond{Units: registry.DefaultBondUnits, Temporal: noTemporal{}, TaskQueue: "alpha-main"}}
	})
	devID, _, devTok := n.developer(t)
	did, _, _ := n.agent(t, devTok, nil)
	require.Equal(t, map[string]ledger.Kind{"dev:" + devID: ledger.KindDeveloper, did: ledger.KindAgent}, l.accounts)
	require.Equal(t, []string{did + " dev:" + devID + " 5000000000 bond-lock-" + did}, l.locked)

	// A short wallet: 422, no agent, the token still usable.
	l.bondErr = apperr.New(apperr.InsufficientFunds, "the developer wallet holds less than the 50 AVT bond")
	bt := n.bootstrap(t, devTok, nil)
	r := n.do(t, req{Method: "POST", Path: "/api/v1/agents", Token: bt})
	require.Equal(t, http.StatusUnprocessableEntity, r.Status, "%s", r.Body)
	require.Equal(t, "insufficient_funds", r.ErrCode(t))
	require.Equal(t, 1, n.countRows(t, "agents"))
	l.bondErr = nil

	// The ledger down: 503, nothing created.
	l.err = errors.New("connection refused")
	r = n.do(t, req{Method: "POST", Path: "/api/v1/agents", Token: bt})
	require.Equal(t, http.StatusServiceUnavailable, r.Status, "%s", r.Body)
	r = n.do(t, req{Method: "POST", Path: "/api/v1/developers", Body: map[string]string{"name": "X", "email": "x@example.org"}})
	require.Equal(t, http.StatusServiceUnavailable, r.Status, "%s", r.Body)
	require.Equal(t, 1, n.countRows(t, "agents"))
	require.Equal(t, 1, n.countRows(t, "developers"))
	l.err = nil

	// The registry transaction fails after the bond was locked (a
	// suspended developer): 403, and the bond is voided.
	_, err := n.DB.Pool.Exec(context.Background(), `UPDATE developers SET suspended_at = now()`)
	require.NoError(t, err)
	r = n.do(t, req{Method: "POST", Path: "/api/v1/agents", Token: bt})
	require.Equal(t, http.StatusForbidden, r.Status, "%s", r.Body)
	require.Len(t, l.void, 1)
	voided := strings.Fields(l.void[0])[0]
	require.Equal(t, strings.Fields(l.locked[1])[0], voided)
	require.Equal(t, voided+" dev:"+devID+" 5000000000 bond-void-"+voided, l.void[0])
}
