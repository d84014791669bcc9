package ingest_test

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/theprotocol-dev/theprotocol/db"
	"github.com/theprotocol-dev/theprotocol/ingest"
	"github.com/theprotocol-dev/theprotocol/testenv"
)

// TestAuditCollectorExportsEveryTerm: the collector exports the audit
// row's terms and the delta computed from them (a row off by one unit
// shows delta -1), and a frame whose database cannot be read exports no
// term at all rather than zeros that look like a passing audit.
func TestAuditCollectorExportsEveryTerm(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	es := testenv.NewDB(t, db.RoleEventStore)
	_, err := es.Pool.Exec(ctx, `INSERT INTO supply_audit (frame, tokens_issued, tokens_destroyed, transit_net, total_circulating, updated_at)
		VALUES ('alpha', 1000, 100, -50, 851, now())`)
	require.NoError(t, err)
	c := ingest.NewAuditCollector(es.Pool, "alpha")
	want := `
# HELP supply_audit_units A term of the frame's supply audit in base units: net_supply = tokens_issued − tokens_destroyed + transit_net; delta = net_supply − total_circulating (must be 0).
# TYPE supply_audit_units gauge
supply_audit_units{frame="alpha",term="delta"} -1
supply_audit_units{frame="alpha",term="net_supply"} 850
supply_audit_units{frame="alpha",term="tokens_destroyed"} 100
supply_audit_units{frame="alpha",term="tokens_issued"} 1000
supply_audit_units{frame="alpha",term="total_circulating"} 851
supply_audit_units{frame="alpha",term="transit_net"} -50
`
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(want), "supply_audit_units"))

	es.Pool.Close()
	require.Zero(t, testutil.CollectAndCount(c, "supply_audit_units"))
	// Two scrapes of the closed pool: two failures.
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(`
# HELP supply_audit_read_failures_total Scrapes where the supply audit row could not be read.
# TYPE supply_audit_read_failures_total counter
supply_audit_read_failures_total{frame="alpha"} 2
`), "supply_audit_read_failures_total"))
}
