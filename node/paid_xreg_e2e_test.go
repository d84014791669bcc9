package node_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/ledger"
	"github.com/theprotocol-dev/theprotocol/node"
	"github.com/theprotocol-dev/theprotocol/paidcalls"
	"github.com/theprotocol-dev/theprotocol/sdk"
	"github.com/theprotocol-dev/theprotocol/sdk/demo"
)

// noHandOver is a settlement that accepts but never starts a saga: what
// a node that crashed right after a settlement committed leaves behind.
type noHandOver struct{ paidcalls.Settlement }

func (noHandOver) Add(ledgerstore.Xfer) {}

// A paid call whose payee agent lives on another registry of the frame,
// built only with the SDK: 402 first, a token from the payer's registry,
// the answer once the payee's registry forwarded the settlement and the
// saga carried the money over. The payer pays the price exactly, the
// payee gets the price less its registry's fee exactly; a token settles
// once whatever is retried, duplicated or lost, and both registries end
// with the frame's audit at delta 0.
func TestPaidCallAcrossRegistries(t *testing.T) {
	ctx := context.Background()
	p := startXferPair(t)
	var creds struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	raw, err := os.ReadFile(node.AdminCredentialsFile(p.srcDir, p.srcReg.ID))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &creds))

	const price = 3 * avt
	res, err := demo.Run(ctx, demo.Config{
		API: p.src.URL(), ServiceAPI: p.dst.URL(), AdminClientID: creds.ClientID, AdminClientSecret: creds.ClientSecret,
		PriceUnits: price, ClientFunds: 20 * price, Log: t.Logf,
	})
	if res.Stop != nil {
		t.Cleanup(res.Stop)
	}
	t.Cleanup(func() { terminateBonds(p.src, res.Service, res.Client) })
	require.NoError(t, err)
	require.Equal(t, http.StatusPaymentRequired, res.First)
	require.Equal(t, "42", res.Answer)
	require.Equal(t, "you said: hello", res.A2AAnswer)
	fee, err := ledger.TransferFee(price, ledger.BaseFeeBps)
	require.NoError(t, err)
	require.Equal(t, int64(2*price), res.ClientBefore-res.ClientAfter, "the payer pays the price exactly, twice")
	require.Equal(t, 2*(int64(price)-fee.FeeUnits), res.ServiceAft-res.ServiceBefore, "the payee gets the price less its registry's fee, twice")
	require.Equal(t, http.StatusPaymentRequired, res.Replay, "the same token presented again is refused")
	cli, svc := res.ClientAgent, res.ServiceAgent
	liquid := func(n *node.Node, did string) int64 { u, _ := balance(t, n, did); return u }

	// The payee's registry settling the same token again (a retry after a
	// lost reply) gets the same settlement: nothing moves twice.
	again, err := svc.SettlePayment(ctx, res.Token, price)
	require.NoError(t, err)
	require.Equal(t, "committed", again.Status, "the original transfer, not a new one")
	var paid int
	require.NoError(t, p.src.Pools[db.RoleTEG].QueryRow(ctx, `SELECT count(*) FROM xfers WHERE sender = $1`, res.Client).Scan(&paid))
	require.Equal(t, 2, paid)
	require.Equal(t, res.ClientAfter, liquid(p.src, res.Client))
	// A settled token cannot be released.
	require.True(t, isStatus(svc.ReleasePayment(ctx, res.Token), 422))

	t.Run("bad tokens move nothing", func(t *testing.T) {
		before := liquid(p.src, res.Client)
		tok, err := cli.IssuePaymentToken(ctx, res.Service, price, 0, "bad")
		require.NoError(t, err)
		require.Equal(t, int64(price), tok.MaxUnits)
		_, err = svc.SettlePayment(ctx, tok.Token, price+1)
		require.True(t, isStatus(err, 400), "over the maximum: %v", err)
		_, err = cli.SettlePayment(ctx, tok.Token, price)
		require.True(t, isStatus(err, 403), "the payer is not the payee: %v", err)
		forged := tok.Token[:len(tok.Token)-4] + "AAAA"
		_, err = svc.SettlePayment(ctx, forged, price)
		require.True(t, isStatus(err, 400), "forged: %v", err)
		require.NoError(t, svc.ReleasePayment(ctx, tok.Token))
		_, err = svc.SettlePayment(ctx, tok.Token, price)
		require.True(t, isStatus(err, 422), "released: %v", err)
		require.Equal(t, before, liquid(p.src, res.Client))
		_, held := balance(t, p.src, res.Client)
		require.Zero(t, held)
	})

	t.Run("concurrent settlements of one token move it once", func(t *testing.T) {
		before := liquid(p.src, res.Client)
		tok, err := cli.IssuePaymentToken(ctx, res.Service, price, 0, "dup")
		require.NoError(t, err)
		var wg sync.WaitGroup
		var mu sync.Mutex
		ids := map[string]int{}
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := svc.SettlePayment(ctx, tok.Token, price)
				require.NoError(t, err)
				mu.Lock()
				ids[s.TransferID]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		require.Len(t, ids, 1, "every settlement names the same transfer")
		for id := range ids {
			waitXfer(t, p.src, uuid.MustParse(id), "committed")
		}
		require.Equal(t, before-price, liquid(p.src, res.Client))
	})

	t.Run("a lost reply of the forwarded settlement is retried once", func(t *testing.T) {
		before := liquid(p.src, res.Client)
		tok, err := cli.IssuePaymentToken(ctx, res.Service, price, 0, "lost")
		require.NoError(t, err)
		var lost int
		p.dst.Xfer.Client.Fault = func(op, _ string, after bool) error {
			if op == "paid_settle" && after && lost == 0 {
				lost++
				return errors.New("injected: the issuer's answer is lost")
			}
			return nil
		}
		s, err := svc.SettlePayment(ctx, tok.Token, price) // the SDK retries the 503 with its key
		p.dst.Xfer.Client.Fault = nil
		require.NoError(t, err)
		require.Equal(t, 1, lost, "the first answer was lost")
		waitXfer(t, p.src, uuid.MustParse(s.TransferID), "committed")
		require.Equal(t, before-price, liquid(p.src, res.Client), "settled once")
	})

	t.Run("a crash between settlement and saga loses nothing", func(t *testing.T) {
		before := liquid(p.src, res.Client)
		cross := p.src.PaidCalls.Cross
		saved := cross.Settlement
		cross.Settlement = noHandOver{saved}
		tok, err := cli.IssuePaymentToken(ctx, res.Service, price, 0, "crash")
		require.NoError(t, err)
		s, err := svc.SettlePayment(ctx, tok.Token, price)
		cross.Settlement = saved
		require.NoError(t, err)
		x, err := p.src.Ledger.GetXfer(ctx, uuid.MustParse(s.TransferID))
		require.NoError(t, err)
		require.Equal(t, "pending", string(x.Status))
		require.Empty(t, x.WorkflowID, "no saga was started")
		// The node's recovery (every RecoverEvery) finds the pending row.
		n, err := p.src.Xfer.Batcher.Recover(ctx, 0)
		require.NoError(t, err)
		require.GreaterOrEqual(t, n, 1)
		waitXfer(t, p.src, x.ID, "committed")
		require.Equal(t, before-price, liquid(p.src, res.Client))
	})

	p.checkEventStore()
	es := p.src.Pools[db.RoleEventStore]
	for typ, want := range map[string]int{"PaymentTokenIssued": 6, "PaymentSettled": 5, "CrossRegistryCredited": 6} {
		var k int
		require.NoError(t, es.QueryRow(ctx, `SELECT count(*) FROM events WHERE event_type = $1`, typ).Scan(&k))
		require.Equal(t, want, k, typ)
	}
}

func isStatus(err error, status int) bool {
	var e *sdk.APIError
	return errors.As(err, &e) && e.Status == status
}

// waitXfer waits for the payer's registry to record a cross-registry
// transfer as want.
func waitXfer(t *testing.T, n *node.Node, id uuid.UUID, want string) {
	t.Helper()
	var last string
	require.Eventually(t, func() bool {
		x, err := n.Ledger.GetXfer(context.Background(), id)
		require.NoError(t, err)
		last = string(x.Status)
		return last == want
	}, 60*time.Second, 50*time.Millisecond, "transfer %s reaches %s (last %s)", id, want, last)
}
