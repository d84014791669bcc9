package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPeersByName(t *testing.T) {
	c, err := loadDeploy(t, map[string]string{"THEPROTOCOL_PEERS_BY_NAME": "true"})
	require.NoError(t, err)
	require.True(t, c.Deploy.PeersByName)
	c, err = loadDeploy(t, nil, "-peers-by-name")
	require.NoError(t, err)
	require.True(t, c.Deploy.PeersByName)
	c, err = loadDeploy(t, nil)
	require.NoError(t, err)
	require.False(t, c.Deploy.PeersByName)
	_, err = loadDeploy(t, map[string]string{"THEPROTOCOL_PEERS_BY_NAME": "sometimes"})
	require.ErrorContains(t, err, "THEPROTOCOL_PEERS_BY_NAME")
}
