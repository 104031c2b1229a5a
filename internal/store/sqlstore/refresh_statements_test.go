package sqlstore

import (
	"reflect"
	"strings"
	"testing"
)

// TestRefreshStatementsDifferOnlyByNotPurged: PostgreSQL's refresh-token
// statements are SQLite's without the deletion-under-way condition and
// nothing else, so that a later edit of one dialect's text cannot drop
// another condition (expiry, rotation, the family's latest) from it.
func TestRefreshStatementsDifferOnlyByNotPurged(t *testing.T) {
	lite, pg := reflect.ValueOf(*sqliteRefresh), reflect.ValueOf(*postgresRefresh)
	for i := range lite.NumField() {
		name := lite.Type().Field(i).Name
		l, p := lite.Field(i).String(), pg.Field(i).String()
		if !strings.Contains(l, "refresh_purges") {
			t.Errorf("%s: SQLite's statement does not check for a deletion under way:\n%s", name, l)
		}
		if strings.Contains(p, "refresh_purges") {
			t.Errorf("%s: PostgreSQL's statement checks for a deletion under way:\n%s", name, p)
		}
		stripped := l
		for _, tbl := range []string{"refresh_tokens", "t"} {
			stripped = strings.ReplaceAll(stripped, " AND "+notPurged(tbl), "")
		}
		if stripped != p {
			t.Errorf("%s: the dialects differ by more than notPurged:\nSQLite without it: %s\nPostgreSQL:        %s", name, stripped, p)
		}
	}
}
