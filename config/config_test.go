package config

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDevTopologyShape(t *testing.T) {
	topo := DevTopology()
	require.Len(t, topo.Frames, 2)
	alpha, beta := topo.Frames[0], topo.Frames[1]
	require.True(t, alpha.Genesis)
	require.Equal(t, "AVT", alpha.Currency)
	require.Len(t, alpha.Registries, 2, "alpha: a mainframe and one operator registry")
	require.Equal(t, "alpha-main", alpha.Mainframe().ID)
	require.Len(t, beta.Registries, 1)
	require.Equal(t, "alpha.events", alpha.Topic())
	require.Equal(t, "alpha_main_teg", alpha.Registries[0].DBName(RoleTEG))
	require.Equal(t, "alpha_op1_registry", alpha.Registries[1].DBName(RoleRegistry))
	require.Equal(t, "beta_eventstore", beta.EventStoreDBName())
	require.Equal(t, []string{"alpha-main", "alpha-op1", "beta-main"}, topo.Namespaces())
}

func TestTopologyValidation(t *testing.T) {
	valid := func() Topology { return DevTopology() }
	cases := []struct {
		name   string
		mutate func(*Topology)
		want   string
	}{
		{"no frames", func(tp *Topology) { tp.Frames = nil }, "no frames"},
		{"bad frame id", func(tp *Topology) { tp.Frames[0].ID = "Alpha!" }, "frame id"},
		{"duplicate frame", func(tp *Topology) { tp.Frames[1].ID = "alpha" }, "duplicate frame"},
		{"two mainframes", func(tp *Topology) { tp.Frames[0].Registries[1].Mainframe = true }, "exactly one mainframe"},
		{"no mainframe", func(tp *Topology) { tp.Frames[1].Registries[0].Mainframe = false }, "exactly one mainframe"},
		{"two genesis frames", func(tp *Topology) { tp.Frames[1].Genesis = true }, "genesis frame"},
		{"unknown role", func(tp *Topology) { tp.Frames[0].Registries[0].Roles = []string{"miner"} }, "unknown role"},
		{"port clash", func(tp *Topology) { tp.Frames[1].Registries[0].APIPort = tp.Frames[0].Registries[0].APIPort }, "already used"},
		{"duplicate registry", func(tp *Topology) { tp.Frames[1].Registries[0].ID = "alpha-op1" }, "duplicate registry"},
		{"negative supply", func(tp *Topology) { tp.Frames[0].GenesisSupplyUnits = -1 }, "negative"},
		{"missing trust domain", func(tp *Topology) { tp.Frames[0].TrustDomain = "" }, "trust_domain"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tp := valid()
			tc.mutate(&tp)
			require.ErrorContains(t, tp.Validate(), tc.want)
		})
	}
}

func TestLoadTopologyRejectsUnknownFields(t *testing.T) {
	p := filepath.Join(t.TempDir(), "t.json")
	require.NoError(t, os.WriteFile(p, []byte(`{"frames":[],"extra":1}`), 0o644))
	_, err := LoadTopology(p)
	require.ErrorContains(t, err, "unknown field")
	_, err = LoadTopology(filepath.Join(t.TempDir(), "missing.json"))
	require.Error(t, err)
}

func TestPrecedenceFlagOverEnvOverDefault(t *testing.T) {
	t.Setenv("THEPROTOCOL_POSTGRES_PORT", "6000")
	t.Setenv("KAFKA_BROKERS", "a:1, b:2")
	c := Defaults()
	require.Equal(t, 6000, c.PostgresPort)
	require.Equal(t, 7233, c.TemporalPort)
	require.Equal(t, "127.0.0.1", c.ListenHost, "listeners bind loopback by default")
	require.Equal(t, []string{"a:1", "b:2"}, c.KafkaBrokerList())

	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	c.RegisterFlags(fs)
	require.NoError(t, fs.Parse([]string{"-postgres-port", "7000"}))
	require.Equal(t, 7000, c.PostgresPort)
	require.NoError(t, c.Validate())

	c.LogFormat = "xml"
	require.ErrorContains(t, c.Validate(), "log-format")
	c.LogFormat = "json"
	c.MaxBodyBytes = 0
	require.True(t, strings.Contains(c.Validate().Error(), "max-body-bytes"))
}
