package ledgerstore

import (
	"context"
	"fmt"
)

// xferRecoveryLockKey is the session advisory lock that serialises the
// settlement recovery passes of every process of this registry ("xrecov").
const xferRecoveryLockKey int64 = 0x7872_6563_6f76

// WithXferRecoveryLock runs fn while holding the registry's settlement
// recovery lock, waiting for it while another process (or another pass of
// this one) holds it. A recovery pass lists unsettled transfers, asks
// Temporal whether their workflows run and starts new ones; two passes
// interleaving would both find the same transfers without a running
// workflow and settle them in two workflows. Serialised, the later pass
// sees the earlier one's workflows running. The lock is a session lock on
// a connection of its own, so it is released when the process dies.
func (s *Store) WithXferRecoveryLock(ctx context.Context, fn func() error) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, xferRecoveryLockKey); err != nil {
		// A cancelled wait may leave the connection mid-query: never
		// hand it back to the pool.
		_ = conn.Conn().Close(context.WithoutCancel(ctx))
		return fmt.Errorf("settlement recovery lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, xferRecoveryLockKey) //nolint:errcheck
	return fn()
}
