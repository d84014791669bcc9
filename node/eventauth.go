package node

import (
	"crypto/ed25519"
	"fmt"

	"github.com/theprotocol-dev/theprotocol/auth"
	"github.com/theprotocol-dev/theprotocol/events"
	"github.com/theprotocol-dev/theprotocol/ingest"
)

// loadEventSigner loads (creating it on first start) the key the node's
// relays sign events with, and writes its public half to the trust
// directory, where the frame's EventStore finds it when it shares the
// directory (dev, tests) and from where an operator copies it otherwise
// (docs/adr/0016). Nothing to do without Kafka or with authentication off.
func (n *Node) loadEventSigner() error {
	o := n.opts
	if len(o.KafkaBrokers) == 0 || !o.EventAuth.Enabled() {
		if len(o.KafkaBrokers) > 0 {
			n.log.Warn("event authentication is off: relays publish unsigned records and the EventStore trusts what any topic writer sends")
		}
		return nil
	}
	path := o.EventAuth.KeyFile(o.DataDir, o.Registry.ID)
	trust := o.EventAuth.TrustDirectory(o.DataDir)
	if path == "" || trust == "" {
		return fmt.Errorf("node %s: event authentication needs DataDir, or both an event signing key file and a trust directory", o.Registry.ID)
	}
	key, err := auth.LoadOrCreateKey(path)
	if err != nil {
		return fmt.Errorf("event signing key: %w", err)
	}
	if err := ingest.PublishKey(trust, o.Registry.ID, key.Public().(ed25519.PublicKey)); err != nil {
		return fmt.Errorf("publish event signing key: %w", err)
	}
	n.eventSigner = events.NewSigner(key)
	return nil
}

// eventStoreAuth is the Applier's authentication: the keys of the trust
// directory for the registries of the node's frame.
func (n *Node) eventStoreAuth() []ingest.ApplierOption {
	o := n.opts
	if n.eventSigner == nil {
		return nil
	}
	regs := []string{o.Registry.ID}
	for _, r := range o.Frame.Registries {
		if r.ID != o.Registry.ID {
			regs = append(regs, r.ID)
		}
	}
	return []ingest.ApplierOption{ingest.WithAuthentication(ingest.DirectoryKeys(o.EventAuth.TrustDirectory(o.DataDir), regs))}
}
