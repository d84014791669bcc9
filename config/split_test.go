package config

import (
	"flag"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSplitSettingsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    SplitSettings
		ok   bool
	}{
		{"none", SplitSettings{}, true},
		{"both https", SplitSettings{TEGMTLSURL: "https://10.0.0.6:9101", RegistryMTLSURL: "https://reg:9102/"}, true},
		{"plain http", SplitSettings{TEGMTLSURL: "http://10.0.0.6:9101"}, false},
		{"no host", SplitSettings{RegistryMTLSURL: "https://"}, false},
		{"a path", SplitSettings{RegistryMTLSURL: "https://reg:9102/internal"}, false},
		{"a query", SplitSettings{TEGMTLSURL: "https://reg:9102?x=1"}, false},
		{"not a URL", SplitSettings{TEGMTLSURL: "::"}, false},
		{"roles", SplitSettings{Roles: []string{RoleTEG, RoleWorker}}, true},
		{"an unknown role", SplitSettings{Roles: []string{"miner"}}, false},
		{"a role twice", SplitSettings{Roles: []string{RoleTEG, RoleTEG}}, false},
		{"an EventStore URL", SplitSettings{EventStoreURL: "http://es:8101"}, true},
		{"an EventStore URL without host", SplitSettings{EventStoreURL: "http://"}, false},
		{"an EventStore URL of another scheme", SplitSettings{EventStoreURL: "ftp://es:8101"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.s.Validate()
			if tc.ok {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
			}
		})
	}
}

func TestSplitSettingsMissingFor(t *testing.T) {
	reg := func(roles ...string) Registry { return Registry{ID: "r1", Roles: roles} }
	none := SplitSettings{}
	require.Empty(t, none.MissingFor(reg(RoleRegistry, RoleTEG, RoleEventStore, RoleWorker)), "all roles in one process")
	require.Empty(t, none.MissingFor(reg(RoleEventStore)), "an EventStore alone needs no one")
	require.Contains(t, none.MissingFor(reg(RoleRegistry)), "teg-mtls-url")
	require.Contains(t, none.MissingFor(reg(RoleRegistry, RoleEventStore)), "teg-mtls-url")
	require.Contains(t, none.MissingFor(reg(RoleEventStore, RoleWorker)), "teg role beside the worker")
	require.Contains(t, SplitSettings{TEGMTLSURL: "https://t:1"}.MissingFor(reg(RoleRegistry, RoleWorker)), "teg role beside the worker")
	require.Contains(t, none.MissingFor(reg(RoleTEG, RoleWorker)), "registry-mtls-url")
	require.Empty(t, SplitSettings{TEGMTLSURL: "https://t:1"}.MissingFor(reg(RoleRegistry)))
	require.Empty(t, SplitSettings{RegistryMTLSURL: "https://r:1"}.MissingFor(reg(RoleTEG)))
}

func TestSplitFlagsAndEnv(t *testing.T) {
	t.Setenv("THEPROTOCOL_TEG_MTLS_URL", "https://teg:9101")
	c := Defaults()
	require.Equal(t, "https://teg:9101", c.Split.TEGMTLSURL)
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	c.RegisterFlags(fs)
	require.NoError(t, fs.Parse([]string{"-registry-mtls-url", "https://reg:9102"}))
	require.Equal(t, "https://reg:9102", c.Split.RegistryMTLSURL)
	require.Equal(t, "https://teg:9101", c.Split.TEGMTLSURL)
	require.NoError(t, c.Split.Validate())
	require.NoError(t, fs.Parse([]string{"-registry-mtls-url", "http://reg:9102"}))
	require.ErrorContains(t, c.Validate(), "registry-mtls-url")
}

func TestSplitSettingsHost(t *testing.T) {
	r := Registry{ID: "r1", Roles: []string{RoleRegistry, RoleTEG, RoleWorker}}
	got, err := SplitSettings{}.Host(r)
	require.NoError(t, err)
	require.Equal(t, r, got, "no roles configured: all of them")
	got, err = SplitSettings{Roles: []string{RoleTEG, RoleWorker}}.Host(r)
	require.NoError(t, err)
	require.Equal(t, []string{RoleTEG, RoleWorker}, got.Roles)
	require.Equal(t, []string{RoleRegistry, RoleTEG, RoleWorker}, r.Roles, "the topology's entry is not changed")
	_, err = SplitSettings{Roles: []string{RoleEventStore}}.Host(r)
	require.ErrorContains(t, err, "no role \"eventstore\"")
}

func TestSplitRolesFlag(t *testing.T) {
	t.Setenv("THEPROTOCOL_ROLES", "teg, worker")
	c := Defaults()
	require.Equal(t, []string{RoleTEG, RoleWorker}, c.Split.Roles)
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	c.RegisterFlags(fs)
	require.NoError(t, fs.Parse([]string{"-roles", "registry", "-eventstore-url", "http://es:8101"}))
	require.Equal(t, []string{RoleRegistry}, c.Split.Roles)
	require.Equal(t, "http://es:8101", c.Split.EventStoreURL)
}
