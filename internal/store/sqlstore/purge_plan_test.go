package sqlstore_test

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/store"
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

// TestUserSearchUsesIndexes: listing users by an email prefix (q=email:jo*)
// or sorted by email reads a range of the email index instead of every
// user. On PostgreSQL that takes the column's byte-order collation
// (migration 9): under a locale's collation LIKE cannot use the index, and
// sorting by bytes could not follow it. SQLite does not use an index for
// a LIKE with an ESCAPE clause, so there the prefix scans the table.
// fullSort matches a plan step that sorts all its input: SQLite's "USE
// TEMP B-TREE FOR ORDER BY" and PostgreSQL's Sort (not Incremental Sort,
// which sorts the ties of an index's order).
var fullSort = regexp.MustCompile(`TEMP B-TREE|(^|->  )Sort  \(`)

func TestUserSearchUsesIndexes(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			s := storetest.Open(t, backend)
			for name, f := range map[string]store.UserFilter{
				"prefix":       {Email: "Jo", EmailPrefix: true},
				"sort":         {SortBy: "email"},
				"sort reverse": {SortBy: "email", SortDesc: true},
			} {
				if name == "prefix" && backend == storetest.SQLite {
					continue
				}
				plan, err := sqlstore.UserListPlan(t.Context(), s, f)
				if err != nil {
					t.Fatal(err)
				}
				// A prefix's matches are sorted by creation, a few rows.
				if tableScan.MatchString(plan) || (name != "prefix" && fullSort.MatchString(plan)) ||
					(name == "prefix" && !strings.Contains(plan, "Index Cond: ((email_lower >=")) {
					t.Errorf("%s: the list reads every user:\n%s", name, plan)
				}
			}
		})
	}
}
