package ledgerstore_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
)

// Group-committed transfer events are COPYed into the outbox under ids
// queued for the relay in the same transaction: every outbox row is in
// outbox_queue (no relay runs here) and every queued id has its row.
func TestTransferEventsAreQueuedForTheRelay(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	gc := e.store.NewGroupCommitter(ledgerstore.GroupCommitOptions{})
	defer gc.Close()
	a, b := e.agent(100*avt), e.agent(100*avt)
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			from, to := a, b
			if i%2 == 1 {
				from, to = b, a
			}
			_, err := gc.Transfer(e.ctx, ledgerstore.TransferRequest{From: from, To: to, AmountUnits: avt, IdempotencyKey: fmt.Sprintf("q-%d", i)})
			require.NoError(t, err)
		}()
	}
	wg.Wait()
	require.Equal(t, 80, e.count(`SELECT count(*) FROM outbox WHERE event_type IN ('TokensTransferred', 'TransactionFeeCollected')`))
	require.Zero(t, e.count(`SELECT count(*) FROM outbox AS o WHERE NOT EXISTS (SELECT 1 FROM outbox_queue AS q WHERE q.id = o.id)`))
	require.Zero(t, e.count(`SELECT count(*) FROM outbox_queue AS q WHERE NOT EXISTS (SELECT 1 FROM outbox AS o WHERE o.id = q.id)`))
	// Each transfer's TokensTransferred precedes its fee event.
	require.Zero(t, e.count(`SELECT count(*) FROM outbox AS x JOIN outbox AS f
		ON f.idempotency_key = 'fee-' || substr(x.idempotency_key, 6) WHERE x.event_type = 'TokensTransferred' AND f.id < x.id`))
}
