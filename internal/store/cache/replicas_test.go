package cache_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/cache"
	"github.com/gatehouse/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// TestReplicasSeeEachOthersWrites: two replicas on one PostgreSQL schema,
// each with its own store and cache. A client secret rotated and then the
// client deleted through replica A are seen by replica B's cache at once;
// the TTL is an hour, so only B's listener can explain it.
func TestReplicasSeeEachOthersWrites(t *testing.T) {
	ctx := t.Context()
	stA, stB := twoReplicas(t)
	writesA := cache.New(time.Hour, nil).Writes(stA)
	cacheB := cache.New(time.Hour, nil)
	readsB := cacheB.Reads(stB)
	lctx, stop := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		stB.Listen(lctx, sqlstore.Changes{Config: cacheB.Invalidate})
	}()
	t.Cleanup(func() {
		stop()
		<-stopped
	})

	cl := &store.Client{ClientID: "app", Name: "App", AppType: "non_interactive", SecretEnc: []byte("secret-1"),
		GrantTypes: []string{"client_credentials"}, TokenEndpointAuthMethod: "client_secret_post"}
	if err := writesA.CreateClient(ctx, cl); err != nil {
		t.Fatal(err)
	}
	// eventually polls B's cached read until ok holds.
	eventually := func(what string, ok func(*store.Client, error) bool) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Second)
		for {
			got, err := readsB.GetClient(ctx, "app")
			if ok(got, err) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: replica B still reads %+v, %v", what, got, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	eventually("created", func(c *store.Client, err error) bool {
		return err == nil && bytes.Equal(c.SecretEnc, []byte("secret-1"))
	})

	cl.SecretEnc = []byte("secret-2")
	if err := writesA.UpdateClient(ctx, cl); err != nil {
		t.Fatal(err)
	}
	eventually("secret rotated", func(c *store.Client, err error) bool {
		return err == nil && bytes.Equal(c.SecretEnc, []byte("secret-2"))
	})

	if err := writesA.DeleteClient(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	eventually("deleted", func(_ *store.Client, err error) bool { return errors.Is(err, store.ErrNotFound) })
}

// twoReplicas opens two stores on one fresh PostgreSQL schema, migrated,
// as two replicas of Gatehouse would.
func twoReplicas(t *testing.T) (a, b *sqlstore.Store) {
	t.Helper()
	dsn := storetest.DSN(t, storetest.Postgres)
	open := func() *sqlstore.Store {
		s, err := sqlstore.Open(t.Context(), dsn, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b = open(), open()
	if err := a.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return a, b
}
