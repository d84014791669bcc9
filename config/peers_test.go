package config

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/db/ledgerstore"
)

func TestPeerSettings(t *testing.T) {
	c, err := load(t, nil)
	require.NoError(t, err)
	require.Equal(t, PeerSettings{ExposureCapUnits: 100_000_000_000_000}, c.Peers, "1,000,000 AVT by default")
	require.Equal(t, DefaultPeerSettings(), c.Peers)
	require.False(t, c.Peers.IsZero())
	require.True(t, PeerSettings{}.IsZero())
	require.Equal(t, ledgerstore.DefaultExposureCapUnits, DefaultExposureCapUnits, "a store given no caps uses the same default")

	cases := []struct {
		name string
		env  map[string]string
		args []string
		want PeerSettings
		errs []string
	}{
		{name: "default cap from the environment", env: map[string]string{"THEPROTOCOL_XFER_EXPOSURE_CAP": "5000"},
			want: PeerSettings{ExposureCapUnits: 5000}},
		{name: "per-peer caps", env: map[string]string{"THEPROTOCOL_XFER_EXPOSURE_CAPS": " op1=10, op-2=0 ,"},
			want: PeerSettings{ExposureCapUnits: DefaultExposureCapUnits, ExposureCaps: ExposureCaps{"op1": 10, "op-2": 0}}},
		{name: "flags over the environment", env: map[string]string{"THEPROTOCOL_XFER_EXPOSURE_CAP": "5000", "THEPROTOCOL_XFER_EXPOSURE_CAPS": "op1=10"},
			args: []string{"-xfer-exposure-cap", "7", "-xfer-exposure-caps", "op9=3"},
			want: PeerSettings{ExposureCapUnits: 7, ExposureCaps: ExposureCaps{"op9": 3}}},
		{name: "an empty flag clears the per-peer caps", env: map[string]string{"THEPROTOCOL_XFER_EXPOSURE_CAPS": "op1=10"},
			args: []string{"-xfer-exposure-caps", ""},
			want: PeerSettings{ExposureCapUnits: DefaultExposureCapUnits}},
		{name: "zero default cap", env: map[string]string{"THEPROTOCOL_XFER_EXPOSURE_CAP": "0"},
			errs: []string{"xfer-exposure-cap (env THEPROTOCOL_XFER_EXPOSURE_CAP)", "integer ≥ 1", "got 0"}},
		{name: "cap not a number", env: map[string]string{"THEPROTOCOL_XFER_EXPOSURE_CAP": "1e6"},
			errs: []string{`THEPROTOCOL_XFER_EXPOSURE_CAP="1e6"`, "decimal integer"}},
		{name: "negative peer cap", env: map[string]string{"THEPROTOCOL_XFER_EXPOSURE_CAPS": "op1=-1"},
			errs: []string{"THEPROTOCOL_XFER_EXPOSURE_CAPS", "cap of op1", "≥ 0", "got -1"}},
		{name: "not a registry ID", env: map[string]string{"THEPROTOCOL_XFER_EXPOSURE_CAPS": "OP 1=5"},
			errs: []string{"THEPROTOCOL_XFER_EXPOSURE_CAPS", `"OP 1" is not a registry ID`}},
		{name: "pair without units", env: map[string]string{"THEPROTOCOL_XFER_EXPOSURE_CAPS": "op1"},
			errs: []string{`THEPROTOCOL_XFER_EXPOSURE_CAPS="op1"`, "registry=units"}},
		{name: "units not a number", env: map[string]string{"THEPROTOCOL_XFER_EXPOSURE_CAPS": "op1=lots"},
			errs: []string{"THEPROTOCOL_XFER_EXPOSURE_CAPS", "cap of op1", "decimal integer"}},
		{name: "peer named twice", env: map[string]string{"THEPROTOCOL_XFER_EXPOSURE_CAPS": "op1=1,op1=2"},
			errs: []string{"THEPROTOCOL_XFER_EXPOSURE_CAPS", "op1 named twice"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := load(t, tc.env, tc.args...)
			if tc.errs == nil {
				require.NoError(t, err)
				require.Equal(t, tc.want, c.Peers)
				return
			}
			require.Error(t, err)
			for _, want := range tc.errs {
				require.Contains(t, err.Error(), want)
			}
		})
	}

	var caps ExposureCaps
	require.NoError(t, caps.Set("b=2,a=1"))
	require.Equal(t, "a=1,b=2", caps.String(), "sorted, in the flag's form")
}
