package sqlstore_test

import (
	"context"
	"regexp"
	"testing"

	"github.com/gatehouse/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// tableScan matches a plan step that reads a whole table: SQLite's
// "SCAN t" (not "SCAN t USING INDEX") and PostgreSQL's "Seq Scan on t".
var tableScan = regexp.MustCompile(`(?m)(^|\W)SCAN \w+( AS \w+)?$|Seq Scan on`)

// TestPurgeStatementsUseIndexes: the background purge runs batch after
// batch on the write lock (SQLite) that every login takes, so none of its
// statements may scan a table: each must find its rows through an index,
// however large the table has grown.
func TestPurgeStatementsUseIndexes(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			s := storetest.Open(t, backend)
			plans, err := sqlstore.PurgePlans(context.Background(), s)
			if err != nil {
				t.Fatal(err)
			}
			for name, plan := range plans {
				if tableScan.MatchString(plan) {
					t.Errorf("%s: the purge scans a table:\n%s", name, plan)
				}
			}
		})
	}
}
