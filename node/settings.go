package node

import (
	"errors"
	"fmt"
	"strings"

	"github.com/theprotocol-dev/theprotocol/config"
)

// settingsOrDefaults gives zero-valued settings their defaults and checks
// the rest, so a caller that builds Options by hand gets the same checks as
// the command line.
func (o *Options) settingsOrDefaults() error {
	if o.BondSettings == (BondSettings{}) {
		o.BondSettings = config.DefaultBondSettings()
	}
	if o.XferSettings == (XferSettings{}) {
		o.XferSettings = config.DefaultXferSettings()
	}
	if o.RegistrySettings == (config.RegistrySettings{}) {
		o.RegistrySettings = config.DefaultRegistrySettings()
	}
	if o.PeerSettings.IsZero() {
		o.PeerSettings = config.DefaultPeerSettings()
	}
	if o.ReconSettings == (ReconSettings{}) {
		o.ReconSettings = config.DefaultReconSettings()
	}
	if o.ReputationSettings.Cron == "" {
		o.ReputationSettings = config.DefaultReputationSettings()
	}
	if o.GovernanceSettings.IsZero() {
		o.GovernanceSettings = config.DefaultGovernanceSettings()
	}
	if o.DiscoverySettings == (config.DiscoverySettings{}) {
		o.DiscoverySettings = config.DefaultDiscoverySettings()
	}
	if o.EventAuth.Mode == "" {
		o.EventAuth.Mode = config.DefaultEventAuthSettings().Mode
	}
	if o.DisputeSettings == (config.DisputeSettings{}) {
		o.DisputeSettings = config.DefaultDisputeSettings()
	}
	if err := o.DisputeSettings.Validate(); err != nil {
		return err
	}
	var proxyErr error
	if _, err := config.ParseTrustedProxies(strings.Join(o.TrustedProxies, ",")); err != nil {
		proxyErr = fmt.Errorf("trusted proxies: %w", err)
	}
	var splitErr error
	if missing := o.Split.MissingFor(o.Registry); missing != "" {
		splitErr = fmt.Errorf("roles %v need %s", o.Registry.Roles, missing)
	}
	return errors.Join(splitErr, o.Split.Validate(), o.BondSettings.Validate(), o.XferSettings.Validate(), o.RegistrySettings.Validate(), o.PeerSettings.Validate(), o.ReconSettings.Validate(), o.EventAuth.Validate(), o.ReputationSettings.Validate(), o.GovernanceSettings.Validate(), o.DiscoverySettings.Validate(), proxyErr)
}
