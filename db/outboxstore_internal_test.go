package db

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestIDRuns(t *testing.T) {
	p := idRuns([]int64{3, 4, 5, 9, 200, 201, 1000})
	require.Equal(t, []int64{3, 200, 1000}, p.Los)
	require.Equal(t, []int64{9, 201, 1000}, p.His)
	require.Empty(t, idRuns(nil).Los)
}
