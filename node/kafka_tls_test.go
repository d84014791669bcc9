package node_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/theprotocol-dev/theprotocol/config"
	"github.com/theprotocol-dev/theprotocol/node"
	"github.com/theprotocol-dev/theprotocol/testenv"
	"github.com/theprotocol-dev/theprotocol/testenv/testpki"
)

// A node whose only broker demands TLS with a client certificate and SCRAM
// works through it with the deployment's Kafka options: topic creation,
// the readiness probe, the outbox relays and the EventStore consumer.
func TestNodeKafkaClientsOverTLSAndSASL(t *testing.T) {
	testenv.SkipWithoutServices(t)
	t.Parallel()
	pki := testpki.New(t)
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.TLS(pki.ServerTLS(t)), kfake.EnableSASL(),
		kfake.Superuser(config.SASLScramSHA256, "node", "hunter2"))
	require.NoError(t, err)
	t.Cleanup(cluster.Close)
	settings := config.KafkaSettings{
		TLS:           config.TLSFiles{CAFile: pki.CA, CertFile: pki.ClientCert, KeyFile: pki.ClientKey},
		SASLMechanism: config.SASLScramSHA256, SASLUser: "node", SASLPassword: "hunter2",
	}
	require.NoError(t, settings.Validate())
	opts, err := settings.ClientOpts()
	require.NoError(t, err)

	frame, reg := testRegistry(t)
	reg.Roles = []string{config.RoleRegistry, config.RoleTEG, config.RoleEventStore}
	frame.Registries = []config.Registry{reg}
	frame.GenesisSupplyUnits = 1_000_000 // the genesis mint is the first event to flow
	n, err := node.Start(context.Background(), node.Options{
		Frame: frame, Registry: reg, PostgresAdminURL: testenv.PostgresURL(t), TemporalAddr: testenv.TemporalAddr(t),
		KafkaBrokers: cluster.ListenAddrs(), KafkaOpts: opts, DataDir: t.TempDir(), Log: quietLog,
	})
	require.NoError(t, err)
	t.Cleanup(func() { n.Stop(context.Background()) })

	status, body := getReady(t, n.URL())
	require.Equal(t, http.StatusOK, status, body)
	require.Equal(t, "ok", body.Checks["kafka"])
	require.Eventually(t, func() bool {
		return metricSum(t, n, "outbox_published_total") > 0 && metricSum(t, n, "eventstore_events_ingested_total") > 0
	}, 60*time.Second, 100*time.Millisecond, "events published and ingested through the TLS+SCRAM broker")
}

// metricSum adds up every series of the named metric in n's registry.
func metricSum(t *testing.T, n *node.Node, name string) float64 {
	t.Helper()
	mfs, err := n.Metrics.Gather()
	require.NoError(t, err)
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}
