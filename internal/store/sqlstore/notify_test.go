package sqlstore_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// heard is how long a notification may take to arrive; far below any
// cache TTL.
const heard = 2 * time.Second

// listenOn runs s.ListenConfigChanges until the test ends and returns a
// channel receiving one value per onChange call.
func listenOn(t *testing.T, s *sqlstore.Store) <-chan struct{} {
	t.Helper()
	changes := make(chan struct{}, 64)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.ListenConfigChanges(ctx, func() {
			select {
			case changes <- struct{}{}:
			default:
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return changes
}

func expectChange(t *testing.T, changes <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-changes:
	case <-time.After(heard):
		t.Fatalf("%s: no change reported within %v", what, heard)
	}
}

func drain(changes <-chan struct{}) {
	for {
		select {
		case <-changes:
		default:
			return
		}
	}
}

// replicas opens dsn twice, as two replicas would, migrated.
func replicas(t *testing.T, dsn string) (*sqlstore.Store, *sqlstore.Store) {
	t.Helper()
	a, b := openRaw(t, dsn), openRaw(t, dsn)
	if err := a.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return a, b
}

// TestConfigChangesReachOtherStores: a change reported through one store
// reaches a listener on another store of the same schema, and not one on
// another schema of the same database.
func TestConfigChangesReachOtherStores(t *testing.T) {
	a, b := replicas(t, storetest.DSN(t, storetest.Postgres))
	other := storetest.Open(t, storetest.Postgres)
	changes, elsewhere := listenOn(t, b), listenOn(t, other)
	// Each listener reports once when it starts listening.
	expectChange(t, changes, "listening")
	expectChange(t, elsewhere, "listening")

	a.ConfigChanged(t.Context())
	expectChange(t, changes, "after ConfigChanged")
	select {
	case <-elsewhere:
		t.Fatal("a listener on another schema heard the change")
	case <-time.After(200 * time.Millisecond):
	}
}

// TestConfigListenerReconnects: when the listening connection is killed
// the listener reports a change (one may have been missed), listens again
// and hears later changes.
func TestConfigListenerReconnects(t *testing.T) {
	dsn := storetest.DSN(t, storetest.Postgres)
	a, b := replicas(t, dsn)
	changes := listenOn(t, b)
	expectChange(t, changes, "listening")

	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// The listener's last statement is its LISTEN on this schema's
	// channel; other tests' listeners use other channels.
	var killed int
	err = db.QueryRowContext(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE query LIKE 'LISTEN %' AND query LIKE '%' || md5(current_schema()) || '%' AND pid <> pg_backend_pid()`).Scan(&killed)
	if err != nil || killed != 1 {
		t.Fatalf("terminated %d listeners (%v), want 1", killed, err)
	}
	expectChange(t, changes, "connection lost")
	expectChange(t, changes, "listening again")

	drain(changes)
	a.ConfigChanged(t.Context())
	expectChange(t, changes, "ConfigChanged after the reconnect")
}

// TestConfigChangesSQLite: one process serves a SQLite file, so there is
// nothing to tell and nothing to listen to.
func TestConfigChangesSQLite(t *testing.T) {
	s := storetest.Open(t, storetest.SQLite)
	s.ConfigChanged(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.ListenConfigChanges(t.Context(), func() { t.Error("onChange called on SQLite") })
	}()
	select {
	case <-done:
	case <-time.After(heard):
		t.Fatal("ListenConfigChanges did not return on SQLite")
	}
}
