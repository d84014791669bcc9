package auth

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/registry"
)

func TestTokenCacheBoundedLRU(t *testing.T) {
	t.Parallel()
	c := newTokenCache(3)
	for i := range 3 {
		c.put(fmt.Sprint(i), registry.Claims{ID: fmt.Sprint(i)})
	}
	_, ok := c.get("0") // 0 becomes the most recently used
	require.True(t, ok)
	c.put("3", registry.Claims{ID: "3"}) // evicts 1, the least recently used
	require.Equal(t, 3, c.len())
	_, ok = c.get("1")
	require.False(t, ok)
	for _, k := range []string{"0", "2", "3"} {
		got, ok := c.get(k)
		require.True(t, ok, k)
		require.Equal(t, k, got.ID)
	}
}
