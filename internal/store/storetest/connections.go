package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

func testConnectionPatch(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, id := range []string{"a", "b", "c"} {
		must(t, s.CreateClient(ctx, &store.Client{ClientID: id}))
	}
	must(t, s.CreateConnection(ctx, fullConnection("con_1", "one", "a", "b")))
	stored, err := s.GetConnection(ctx, "con_1")
	must(t, err)

	// Enablements left nil are kept; the immutable fields are not written.
	before := time.Now().Add(-time.Millisecond)
	got, err := s.PatchConnection(ctx, "con_1", func(c *store.Connection, _ store.ClientLookup) error {
		equal(t, "connection given to patch", c, stored)
		c.Name, c.Strategy, c.CreatedAt = "renamed", "oidc", t0.Add(time.Hour)
		c.DisplayName, c.Options, c.SecretEnc = "New", json.RawMessage(`{"tenant_domain": "fabrikam.example"}`), nil
		c.Realms, c.Metadata, c.EnabledClients = []string{}, nil, nil
		c.TenantGeneration++
		return nil
	})
	must(t, err)
	if got.UpdatedAt.Before(before) {
		t.Errorf("PatchConnection: UpdatedAt %v, want now", got.UpdatedAt)
	}
	want := *stored
	want.DisplayName, want.Options, want.SecretEnc, want.Realms, want.Metadata = "New", json.RawMessage(`{"tenant_domain": "fabrikam.example"}`), nil, []string{}, nil
	want.UpdatedAt, want.TenantGeneration = got.UpdatedAt, stored.TenantGeneration+1
	equal(t, "PatchConnection's answer", got, &want)
	after, err := s.GetConnection(ctx, "con_1")
	must(t, err)
	equal(t, "GetConnection after PatchConnection", after, &want)

	// Non-nil enablements replace the stored ones; the answer has them
	// as stored, sorted.
	got, err = s.PatchConnection(ctx, "con_1", func(c *store.Connection, client store.ClientLookup) error {
		if cl, err := client("c"); err != nil || cl.ClientID != "c" {
			t.Errorf("client lookup of c: %v, %v", cl, err)
		}
		if _, err := client("ghost"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("client lookup of a missing client: %v, want store.ErrNotFound", err)
		}
		c.EnabledClients = []string{"c", "a"}
		return nil
	})
	must(t, err)
	if !reflect.DeepEqual(got.EnabledClients, []string{"a", "c"}) {
		t.Errorf("PatchConnection's answer enables %v, want [a c]", got.EnabledClients)
	}
	want.EnabledClients, want.UpdatedAt = []string{"a", "c"}, got.UpdatedAt

	// A refused patch, a missing connection and an unknown client write
	// nothing.
	refused := errors.New("refused")
	_, err = s.PatchConnection(ctx, "con_1", func(c *store.Connection, _ store.ClientLookup) error {
		c.DisplayName = "Refused"
		return refused
	})
	wantErr(t, "PatchConnection with a failing patch", err, refused)
	_, err = s.PatchConnection(ctx, "con_1", func(c *store.Connection, _ store.ClientLookup) error {
		c.DisplayName, c.EnabledClients = "Ghost", []string{"a", "ghost"}
		return nil
	})
	wantErr(t, "PatchConnection enabling an unknown client", err, store.ErrNotFound)
	_, err = s.PatchConnection(ctx, "con_9", func(*store.Connection, store.ClientLookup) error {
		t.Error("PatchConnection called patch for a missing connection")
		return nil
	})
	wantErr(t, "PatchConnection missing", err, store.ErrNotFound)
	after, err = s.GetConnection(ctx, "con_1")
	must(t, err)
	equal(t, "GetConnection after refused patches", after, &want)
}

// testConnectionPatchRace: administrators patching one connection at
// once each start from the others' changes, so none is lost; more of them
// than a backend has connections to its database, each reading a client
// while it holds the lock the others wait for, all complete.
func testConnectionPatchRace(t *testing.T, s store.Store) {
	// Bounded, so that patches waiting for each other fail the test
	// rather than hang it.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	must(t, s.CreateClient(ctx, &store.Client{ClientID: "app"}))
	c := fullConnection("con_1", "one", "app")
	c.Metadata = map[string]string{}
	must(t, s.CreateConnection(ctx, c))
	const patches = 30
	var wg sync.WaitGroup
	for i := range patches {
		wg.Go(func() {
			_, err := s.PatchConnection(ctx, "con_1", func(c *store.Connection, client store.ClientLookup) error {
				if _, err := client("app"); err != nil {
					return err
				}
				c.Metadata[fmt.Sprint("k", i)] = "v"
				return nil
			})
			if err != nil {
				t.Errorf("patch %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	got, err := s.GetConnection(ctx, "con_1")
	must(t, err)
	if len(got.Metadata) != patches {
		t.Errorf("concurrent patches: metadata %v, want %d keys", got.Metadata, patches)
	}
}
