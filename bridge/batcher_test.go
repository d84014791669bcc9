package bridge

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/apperr"
)

// The backlog of a pair is bounded: past it, admission waits and fails
// with Unavailable at the caller's deadline; released room admits again.
func TestBatcherAdmissionIsBounded(t *testing.T) {
	b := &Batcher{Opts: BatcherOptions{MaxBatch: 2, MaxBacklog: 2}}
	r1, err := b.Admit(context.Background(), "beta")
	require.NoError(t, err)
	_, err = b.Admit(context.Background(), "beta")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = b.Admit(ctx, "beta")
	require.True(t, apperr.Is(err, apperr.Unavailable), "%v", err)
	// Another pair has its own room.
	_, err = b.Admit(context.Background(), "gamma")
	require.NoError(t, err)
	r1()
	r1() // releasing twice frees one slot only
	_, err = b.Admit(context.Background(), "beta")
	require.NoError(t, err)
	require.False(t, b.Carrying(uuid.New()))
}
