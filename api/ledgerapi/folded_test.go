package ledgerapi_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/api"
	"github.com/theprotocol-dev/theprotocol/api/ledgerapi"
	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
	"github.com/theprotocol-dev/theprotocol/payments"
)

// A successful POST /transfers is its own idempotency record: no
// idempotency_keys row; a replay answers the identical bytes with
// Idempotent-Replayed, a different body with the same key is 409, and
// nothing is applied twice.
func TestTransferIsItsOwnIdempotencyRecord(t *testing.T) {
	t.Parallel()
	for _, gc := range []bool{true, false} {
		t.Run(fmt.Sprintf("groupcommit=%v", gc), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, gc)
			a, b := f.agent(100*avt), f.agent(0)
			body := fmt.Sprintf(`{"to":%q,"amount_units":%d,"memo":"<rent> & \"more\""}`, b, avt)
			first := f.do(req{method: "POST", path: "/api/v1/transfers", body: body, subject: a, key: "k1"})
			require.Equal(t, http.StatusCreated, first.status, "%s", first.body)
			require.False(t, first.replayed)
			var records int
			require.NoError(t, f.pool.QueryRow(context.Background(), `SELECT count(*) FROM idempotency_keys`).Scan(&records))
			require.Zero(t, records, "a committed transfer needs no separate record")
			snap := f.snapshot()

			again := f.do(req{method: "POST", path: "/api/v1/transfers", body: body, subject: a, key: "k1"})
			require.Equal(t, http.StatusCreated, again.status)
			require.True(t, again.replayed)
			require.Equal(t, string(first.body), string(again.body), "byte-identical replay")

			// Same parameters, different bytes: a different request (409), as
			// with stored records.
			other := fmt.Sprintf(`{"amount_units":%d,"to":%q,"memo":"<rent> & \"more\""}`, avt, b)
			r := f.do(req{method: "POST", path: "/api/v1/transfers", body: other, subject: a, key: "k1"})
			require.Equal(t, http.StatusConflict, r.status)
			require.Equal(t, "idempotency_key_reused", r.errCode())
			// Malformed body with a used key: 409 too (the key names a transfer).
			r = f.do(req{method: "POST", path: "/api/v1/transfers", body: `{"to":`, subject: a, key: "k1"})
			require.Equal(t, http.StatusConflict, r.status)
			require.Equal(t, "idempotency_key_reused", r.errCode())
			require.Equal(t, snap, f.snapshot(), "replays and refusals change nothing")

			// Another caller may use the same key: keys are per caller.
			c := f.agent(10 * avt)
			r = f.do(req{method: "POST", path: "/api/v1/transfers", body: body, subject: c, key: "k1"})
			require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
			require.False(t, r.replayed)
		})
	}
}

// A failed transfer's response is stored as before and replayed even after
// the failure's cause went away; a later different request with its key is
// 409.
func TestFailedTransferResponseIsStored(t *testing.T) {
	t.Parallel()
	f := newFixture(t, true)
	a, b := f.agent(1*avt), f.agent(0)
	body := fmt.Sprintf(`{"to":%q,"amount_units":%d}`, b, 5*avt)
	first := f.do(req{method: "POST", path: "/api/v1/transfers", body: body, subject: a, key: "poor"})
	require.Equal(t, "insufficient_funds", first.errCode(), "%s", first.body)
	snap := f.snapshot()
	_, err := f.store.Grant(context.Background(), grantReq(a, 10*avt, "top-up"))
	require.NoError(t, err)
	snap2 := f.snapshot()
	require.NotEqual(t, snap, snap2)

	again := f.do(req{method: "POST", path: "/api/v1/transfers", body: body, subject: a, key: "poor"})
	require.Equal(t, first.status, again.status)
	require.True(t, again.replayed)
	require.Equal(t, string(first.body), string(again.body))
	require.Equal(t, snap2, f.snapshot(), "the replay applied nothing")

	r := f.do(req{method: "POST", path: "/api/v1/transfers", body: fmt.Sprintf(`{"to":%q,"amount_units":%d}`, b, avt), subject: a, key: "poor"})
	require.Equal(t, http.StatusConflict, r.status)
	require.Equal(t, "idempotency_key_reused", r.errCode())

	// A validation failure is stored too, and replayed.
	bad := f.do(req{method: "POST", path: "/api/v1/transfers", body: `{"to":"nobody","amount_units":0}`, subject: a, key: "bad"})
	require.Equal(t, http.StatusBadRequest, bad.status)
	bad2 := f.do(req{method: "POST", path: "/api/v1/transfers", body: `{"to":"nobody","amount_units":0}`, subject: a, key: "bad"})
	require.True(t, bad2.replayed)
	require.Equal(t, string(bad.body), string(bad2.body))
	require.Equal(t, snap2, f.snapshot())
}

func grantReq(to string, units int64, key string) ledgerstore.SupplyRequest {
	return ledgerstore.SupplyRequest{To: to, AmountUnits: units, Reason: "top up", Actor: "admin:t", IdempotencyKey: key}
}

// Transfers recorded by the generic middleware (before transfers were
// their own records: no request hash on the row) keep their stored
// responses: the record, which compares request bytes, wins over the row.
func TestLegacyRecordedTransferReplays(t *testing.T) {
	t.Parallel()
	f := newFixture(t, true)
	legacy := api.NewEngine(api.EngineOptions{Log: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(), MaxBodyBytes: 64 << 10})
	batcher := ledgerstore.NewIdempotencyBatcher(f.pool)
	t.Cleanup(batcher.Close)
	ledgerapi.New(ledgerapi.Options{Store: f.store, Payments: &payments.Service{Ledger: f.store, Transfers: f.gc}, Idempotency: batcher, Auth: testAuth, RecordTransferResponses: true}).Mount(legacy.Group("/api/v1"))
	folded := f.h

	a, b := f.agent(10*avt), f.agent(0)
	body := fmt.Sprintf(`{"to":%q,"amount_units":%d}`, b, avt)
	f.h = legacy
	first := f.do(req{method: "POST", path: "/api/v1/transfers", body: body, subject: a, key: "old"})
	require.Equal(t, http.StatusCreated, first.status, "%s", first.body)
	snap := f.snapshot()

	f.h = folded
	again := f.do(req{method: "POST", path: "/api/v1/transfers", body: body, subject: a, key: "old"})
	require.Equal(t, http.StatusCreated, again.status)
	require.True(t, again.replayed)
	require.Equal(t, string(first.body), string(again.body))
	// Same parameters, other bytes: 409, as the record says.
	other := fmt.Sprintf(`{"amount_units":%d,"to":%q}`, avt, b)
	r := f.do(req{method: "POST", path: "/api/v1/transfers", body: other, subject: a, key: "old"})
	require.Equal(t, http.StatusConflict, r.status)
	require.Equal(t, "idempotency_key_reused", r.errCode())
	require.Equal(t, snap, f.snapshot())
}
