package gctune_test

import (
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/gctune"
)

func TestTune(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		t.Setenv("GOGC", "")
		t.Setenv("GOMEMLIMIT", "")
		before := debug.SetGCPercent(150)
		defer debug.SetGCPercent(before)
		restore := gctune.Tune(nil)
		require.Equal(t, gctune.GCPercent, debug.SetGCPercent(-1))
		debug.SetGCPercent(gctune.GCPercent)
		require.EqualValues(t, gctune.MemoryLimit, debug.SetMemoryLimit(-1))
		restore()
		require.Equal(t, 150, debug.SetGCPercent(before))
	})
	t.Run("environment wins", func(t *testing.T) {
		t.Setenv("GOGC", "100")
		t.Setenv("GOMEMLIMIT", "off")
		before := debug.SetGCPercent(120)
		defer debug.SetGCPercent(before)
		limit := debug.SetMemoryLimit(-1)
		defer gctune.Tune(nil)()
		require.Equal(t, 120, debug.SetGCPercent(120))
		require.Equal(t, limit, debug.SetMemoryLimit(-1))
	})
}
