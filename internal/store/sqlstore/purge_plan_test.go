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
// sorting by bytes could not follow it. SQLite's LIKE cannot use it at
// all, so the prefix is a range there.
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
				count, plan, err := sqlstore.ListPlans(t.Context(), s, f)
				if err != nil {
					t.Fatal(err)
				}
				// A prefix's matches are sorted by creation, a few rows.
				if tableScan.MatchString(plan) || (name != "prefix" && fullSort.MatchString(plan)) ||
					(name == "prefix" && !strings.Contains(plan, emailRange[backend])) {
					t.Errorf("%s: the list reads every user:\n%s", name, plan)
				}
				if name == "prefix" && !strings.Contains(count, emailRange[backend]) {
					t.Errorf("%s: the count reads every user:\n%s", name, count)
				}
			}
		})
	}
}

// emailRange is, by backend, how a plan reads a range of users_email.
var emailRange = map[string]string{
	storetest.SQLite:   "users_email (email_lower>? AND email_lower<?)",
	storetest.Postgres: "Index Cond: ((email_lower >=",
}

// TestSQLiteSearchesTheSelectiveIndex: a list filtered on two indexed
// columns reads the index of the one that names a few rows, not every
// user of a connection, every event of a type or every token of a client.
// SQLite's planner has no statistics to tell which one that is (nothing
// runs ANALYZE) and takes an equality over a range, and between two
// equalities either; PostgreSQL's planner has them.
func TestSQLiteSearchesTheSelectiveIndex(t *testing.T) {
	s := storetest.Open(t, storetest.SQLite)
	yes := true
	for _, tc := range []struct {
		f    any
		want string
	}{
		{store.UserFilter{Email: "jo@contoso.example", Connection: "contoso"}, "users_email (email_lower=?)"},
		{store.UserFilter{Email: "jo@contoso.example", Connection: "contoso", SortBy: "email"}, "users_email (email_lower=?)"},
		{store.UserFilter{Email: "Jo", EmailPrefix: true, Connection: "contoso"}, emailRange[storetest.SQLite]},
		{store.UserFilter{Email: "Jo", EmailPrefix: true, Connection: "contoso", SortBy: "last_login"}, emailRange[storetest.SQLite]},
		{store.UserFilter{Email: "Jo", EmailPrefix: true, SortBy: "email", SortDesc: true}, emailRange[storetest.SQLite]},
		{store.UserFilter{Connection: "contoso"}, "users_connection (connection=?)"},
		{store.LogFilter{Type: "s", UserID: "waad|jo"}, "log_events_user (user_id=?)"},
		{store.LogFilter{Type: "s", UserID: "waad|jo", OldestFirst: true}, "log_events_user (user_id=?)"},
		{store.RefreshTokenFilter{UserID: "waad|jo", ClientID: "app"}, "refresh_tokens_user (user_id=?)"},
		{store.RefreshTokenFilter{UserID: "waad|jo", ClientID: "app", Rotating: &yes}, "refresh_tokens_user (user_id=?)"},
		{store.RefreshTokenFilter{UserID: "waad|jo", ID: "rt_1", ClientID: "app"}, "(id=?)"},
	} {
		count, page, err := sqlstore.ListPlans(t.Context(), s, tc.f)
		if err != nil {
			t.Fatal(err)
		}
		for what, plan := range map[string]string{"count": count, "page": page} {
			if !strings.Contains(plan, tc.want) {
				t.Errorf("%T %+v: the %s does not read %s:\n%s", tc.f, tc.f, what, tc.want, plan)
			}
		}
	}
}

// TestConnectionDeleteUsesIndexes: deleting a connection finds its
// refresh tokens through indexes, not by reading every token of every
// connection while it holds (SQLite) the one write lock that every login,
// refresh and Management write waits for. On PostgreSQL the deletion's
// runs after its transaction read them again.
func TestConnectionDeleteUsesIndexes(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			s := storetest.Open(t, backend)
			plans, err := sqlstore.DeleteConnectionPlans(t.Context(), s)
			if err != nil {
				t.Fatal(err)
			}
			for name, plan := range plans {
				if readsWhole(plan) {
					t.Errorf("%s: the connection's deletion reads a whole table or index:\n%s", name, plan)
				}
			}
			// The tokens stored without their connection are those of the
			// connection's users: SQLite, without statistics, would read
			// every such token of every connection through
			// refresh_tokens_connection instead.
			if plan := plans["in the deletion"]; backend == storetest.SQLite && !strings.Contains(plan, "refresh_tokens_user (user_id=?)") {
				t.Errorf("the connection's deletion reads the legacy tokens of every connection:\n%s", plan)
			}
		})
	}
}

// readsWhole reports whether a plan reads a whole table or a whole index:
// beyond tableScan, SQLite's "SCAN t USING INDEX i", and a PostgreSQL
// index scan with no Index Cond, which is what discouraging sequential
// scans makes of one (every row of the pkey, filtered).
func readsWhole(plan string) bool {
	if tableScan.MatchString(plan) || sqliteIndexScan.MatchString(plan) {
		return true
	}
	lines := strings.Split(plan, "\n")
	for i, l := range lines {
		if !pgIndexScan.MatchString(l) {
			continue
		}
		bounded := false
		for _, d := range lines[i+1:] {
			if strings.Contains(d, "->") {
				break
			}
			bounded = bounded || strings.Contains(d, "Index Cond:")
		}
		if !bounded {
			return true
		}
	}
	return false
}

var (
	sqliteIndexScan = regexp.MustCompile(`(?m)(^|\W)SCAN \w+( AS \w+)? USING `)
	pgIndexScan     = regexp.MustCompile(`Index (Only )?Scan (Backward )?using |Bitmap Index Scan on `)
)

// TestLogUserNamesUsesTheUserIndex: the user-blocks routes read the
// names a user signed in with through log_events_user, a range of one
// user's events: not every event of the type (log_events_type) or of the
// tenant. SQLite reads it backwards, in order; PostgreSQL's planner may
// sort the range (it does on an empty table), which holds one user's
// events within the log retention.
func TestLogUserNamesUsesTheUserIndex(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			s := storetest.Open(t, backend)
			plan, err := sqlstore.LogUserNamesPlan(t.Context(), s)
			if err != nil {
				t.Fatal(err)
			}
			if readsWhole(plan) || (backend == storetest.SQLite && fullSort.MatchString(plan)) || !strings.Contains(plan, userRange[backend]) {
				t.Errorf("the query does not read a range of log_events_user:\n%s", plan)
			}
		})
	}
}

// userRange is, by backend, how a plan reads one user's range of
// log_events_user.
var userRange = map[string]string{
	storetest.SQLite:   "log_events_user (user_id=?)",
	storetest.Postgres: "Index Cond: (user_id =",
}
