package sqlstore_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// heard is how long a notification may take to arrive; far below any
// cache TTL.
const heard = 2 * time.Second

// listenOn runs s.Listen until the test ends and returns a channel
// receiving one value per Changes.Config call.
func listenOn(t *testing.T, s *sqlstore.Store) <-chan struct{} {
	t.Helper()
	config, _ := listenBoth(t, s)
	return config
}

// listenBoth is listenOn with a second channel for Changes.Keys.
func listenBoth(t *testing.T, s *sqlstore.Store) (config, keys <-chan struct{}) {
	t.Helper()
	c, k := make(chan struct{}, 64), make(chan struct{}, 64)
	send := func(ch chan struct{}) func() {
		return func() {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Listen(ctx, sqlstore.Changes{Config: send(c), Keys: send(k)})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return c, k
}

func expectQuiet(t *testing.T, changes <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-changes:
		t.Fatalf("%s: a change was reported", what)
	case <-time.After(200 * time.Millisecond):
	}
}

// TestKeyChangesReachOtherStores: every signing-key write through one
// store is reported to a listener on another as a key change, and not as
// a configuration change; a configuration change is not a key change.
func TestKeyChangesReachOtherStores(t *testing.T) {
	ctx := t.Context()
	a, b := replicas(t, storetest.DSN(t, storetest.Postgres))
	config, keys := listenBoth(t, b)
	expectChange(t, config, "listening (config)")
	expectChange(t, keys, "listening (keys)")

	key := func(kid string, state store.KeyState) *store.SigningKey {
		return &store.SigningKey{KID: kid, PrivateEnc: []byte("p-" + kid), CertDER: []byte("c-" + kid), State: state}
	}
	at := time.Now()
	for _, w := range []struct {
		what  string
		write func() error
	}{
		{"InsertSigningKeyIfNone current", func() error { _, err := a.InsertSigningKeyIfNone(ctx, key("k1", store.KeyCurrent)); return err }},
		{"InsertSigningKeyIfNone next", func() error { _, err := a.InsertSigningKeyIfNone(ctx, key("k2", store.KeyNext)); return err }},
		{"RotateSigningKeys", func() error { _, err := a.RotateSigningKeys(ctx, "k1", key("k3", store.KeyNext), at); return err }},
		{"RevokeSigningKey", func() error { _, err := a.RevokeSigningKey(ctx, "k1", at); return err }},
		{"UpdateSigningKey", func() error {
			return a.UpdateSigningKey(ctx, &store.SigningKey{KID: "k1", State: store.KeyRevoked, RevokedAt: &at})
		}},
	} {
		if err := w.write(); err != nil {
			t.Fatalf("%s: %v", w.what, err)
		}
		expectChange(t, keys, w.what)
		expectQuiet(t, config, w.what+" (config)")
	}

	a.ConfigChanged(ctx)
	expectChange(t, config, "ConfigChanged")
	expectQuiet(t, keys, "ConfigChanged (keys)")

	// A write that changes nothing tells nobody.
	if inserted, err := a.InsertSigningKeyIfNone(ctx, key("k4", store.KeyNext)); err != nil || inserted {
		t.Fatalf("InsertSigningKeyIfNone with a next key present: %v %v", inserted, err)
	}
	expectQuiet(t, keys, "InsertSigningKeyIfNone that inserted nothing")
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
// the listener reports a change of every kind (one may have been missed),
// listens again and hears later changes.
func TestConfigListenerReconnects(t *testing.T) {
	dsn := storetest.DSN(t, storetest.Postgres)
	a, b := replicas(t, dsn)
	changes, keys := listenBoth(t, b)
	expectChange(t, changes, "listening")
	expectChange(t, keys, "listening (keys)")

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
	expectChange(t, keys, "connection lost (keys)")
	expectChange(t, keys, "listening again (keys)")

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
		fail := func() { t.Error("a change reported on SQLite") }
		s.Listen(t.Context(), sqlstore.Changes{Config: fail, Keys: fail})
	}()
	select {
	case <-done:
	case <-time.After(heard):
		t.Fatal("Listen did not return on SQLite")
	}
}
