package node

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/config"
)

func TestOptionsSettingsDefaultsAndChecks(t *testing.T) {
	var o Options
	require.NoError(t, o.settingsOrDefaults())
	require.Equal(t, config.DefaultBondSettings(), o.BondSettings, "zero means the defaults")
	require.Equal(t, config.DefaultXferSettings(), o.XferSettings)
	require.Equal(t, config.DefaultRegistrySettings(), o.RegistrySettings)
	require.Equal(t, config.DefaultPeerSettings(), o.PeerSettings)
	require.Equal(t, config.DefaultReconSettings(), o.ReconSettings)

	o = Options{BondSettings: config.BondSettings{MinAge: time.Second, MinTransfers: 1, MinTrust: 0, RecheckEvery: time.Second}}
	require.NoError(t, o.settingsOrDefaults())
	require.Equal(t, time.Second, o.BondSettings.MinAge, "given settings are kept")

	// Options built by hand get the command line's checks.
	o = Options{XferSettings: config.XferSettings{MaxBatch: 5000}}
	require.ErrorContains(t, o.settingsOrDefaults(), "THEPROTOCOL_XFER_MAX_BATCH")
	o = Options{PeerSettings: config.PeerSettings{ExposureCapUnits: 10, ExposureCaps: config.ExposureCaps{"op1": -1}}}
	require.ErrorContains(t, o.settingsOrDefaults(), "THEPROTOCOL_XFER_EXPOSURE_CAPS")
	o = Options{PeerSettings: config.PeerSettings{ExposureCapUnits: 10}}
	require.NoError(t, o.settingsOrDefaults())
	require.EqualValues(t, 10, o.PeerSettings.ExposureCapUnits, "a given cap is kept")
}
