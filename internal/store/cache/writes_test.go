package cache

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/gatehouse/gatehouse/internal/store"
)

// kind is what a store method does to the rows this package caches.
type kind int

const (
	// read changes nothing stored; Ping and Close count as reads.
	read kind = iota
	// cachedWrite changes a row the cache may hold: Writes must override
	// it and invalidate.
	cachedWrite
	// uncachedWrite changes only rows the cache never holds.
	uncachedWrite
)

// storeMethods classifies every method of store.Store. Writes embeds
// store.Store, so a write added to the store is promoted past the
// invalidation unless someone decides here which kind it is; a map makes
// each method have exactly one kind.
var storeMethods = map[string]kind{
	"Ping":  read,
	"Close": read,

	"GetClient":       read,
	"ListClients":     read,
	"CreateClient":    cachedWrite,
	"UpdateClient":    cachedWrite,
	"SetClientSecret": cachedWrite,
	"DeleteClient":    cachedWrite,

	"GetConnection":              read,
	"GetConnectionByName":        read,
	"ListConnections":            read,
	"ConnectionEnabledForClient": read,
	"CreateConnection":           cachedWrite,
	"PatchConnection":            cachedWrite,
	"DeleteConnection":           cachedWrite,
	"SetConnectionClients":       cachedWrite,

	"GetResourceServer":             read,
	"GetResourceServerByIdentifier": read,
	"ListResourceServers":           read,
	"CreateResourceServer":          cachedWrite,
	"UpdateResourceServer":          cachedWrite,
	"DeleteResourceServer":          cachedWrite,

	"GetClientGrant":    read,
	"FindClientGrant":   read,
	"ListClientGrants":  read,
	"CreateClientGrant": cachedWrite,
	"UpdateClientGrant": cachedWrite,
	"DeleteClientGrant": cachedWrite,

	"GetTenantSettings": read,
	"PutTenantSettings": cachedWrite,

	"GetAttackSettings": read,
	"PutAttackSettings": cachedWrite,

	"ListSigningKeys":        read,
	"InsertSigningKeyIfNone": uncachedWrite,
	"UpdateSigningKey":       uncachedWrite,
	"RotateSigningKeys":      uncachedWrite,
	"RevokeSigningKey":       uncachedWrite,

	"GetUser":     read,
	"ListUsers":   read,
	"UpsertUser":  uncachedWrite,
	"PatchUser":   uncachedWrite,
	"DeleteUser":  uncachedWrite,
	"RecordLogin": uncachedWrite,

	"PurgeDeletedConnectionUsers": uncachedWrite,

	"ListLogEvents":      read,
	"GetLogEvent":        read,
	"ListLogEventsAfter": read,
	"LogUserNames":       read,
	"AppendLogEvent":     uncachedWrite,
	"PurgeLogEvents":     uncachedWrite,

	"CreateClientCredential": uncachedWrite,
	"ListClientCredentials":  read,
	"GetClientCredential":    read,
	"UpdateClientCredential": uncachedWrite,
	"DeleteClientCredential": uncachedWrite,
	"UseClientAssertion":     uncachedWrite,
	"PurgeClientAssertions":  uncachedWrite,

	"GetRefreshToken":           read,
	"GetRefreshTokenWithUser":   read,
	"ListRefreshTokens":         read,
	"CreateRefreshToken":        uncachedWrite,
	"ExchangeRefreshToken":      uncachedWrite,
	"RefreshTokenReused":        read,
	"RevokeRefreshTokenFamily":  uncachedWrite,
	"RevokeUserRefreshTokens":   uncachedWrite,
	"PurgeExpiredRefreshTokens": uncachedWrite,
	"PurgeDeletedOwnerTokens":   cachedWrite,

	"ListAttackCounters":   read,
	"TakeAttempt":          uncachedWrite,
	"ReturnAttempt":        uncachedWrite,
	"DeleteAttackCounters": uncachedWrite,
	"TakeToken":            uncachedWrite,
	"ReturnToken":          uncachedWrite,
	"AttackBucket":         read,
	"DeleteAttackBucket":   uncachedWrite,
	"TakeLogin":            uncachedWrite,
	"ClearLogin":           uncachedWrite,
	"PruneAttack":          uncachedWrite,
}

var storeType = reflect.TypeFor[store.Store]()

func TestEveryStoreMethodIsClassified(t *testing.T) {
	for m := range storeType.Methods() {
		if _, ok := storeMethods[m.Name]; !ok {
			t.Errorf("store.Store.%s is not in storeMethods: classify it; if it writes clients, connections, "+
				"APIs, client grants, tenant or attack-protection settings, Writes must override it", m.Name)
		}
	}
	for name := range storeMethods {
		if _, ok := storeType.MethodByName(name); !ok {
			t.Errorf("storeMethods lists %s, which store.Store no longer has", name)
		}
	}
}

// nopStore accepts every cached write; anything else reaches the nil
// store.Store and panics.
type nopStore struct{ store.Store }

func (nopStore) CreateClient(context.Context, *store.Client) error         { return nil }
func (nopStore) UpdateClient(context.Context, *store.Client) error         { return nil }
func (nopStore) SetClientSecret(context.Context, string, []byte) error     { return nil }
func (nopStore) DeleteClient(context.Context, string) error                { return nil }
func (nopStore) CreateConnection(context.Context, *store.Connection) error { return nil }
func (nopStore) DeleteConnection(context.Context, string) error            { return nil }
func (nopStore) PatchConnection(context.Context, string, func(*store.Connection, store.ClientLookup) error) (*store.Connection, error) {
	return nil, nil
}
func (nopStore) SetConnectionClients(context.Context, string, map[string]bool) error { return nil }

// PurgeDeletedOwnerTokens reports an owner deleted: a run that deleted
// nothing leaves the cache alone.
func (nopStore) PurgeDeletedOwnerTokens(context.Context, int) (int, bool, error) {
	return 1, false, nil
}
func (nopStore) CreateResourceServer(context.Context, *store.ResourceServer) error { return nil }
func (nopStore) UpdateResourceServer(context.Context, *store.ResourceServer) error { return nil }
func (nopStore) DeleteResourceServer(context.Context, string) error                { return nil }
func (nopStore) CreateClientGrant(context.Context, *store.ClientGrant) error       { return nil }
func (nopStore) UpdateClientGrant(context.Context, *store.ClientGrant) error       { return nil }
func (nopStore) DeleteClientGrant(context.Context, string) error                   { return nil }
func (nopStore) PutTenantSettings(context.Context, *store.TenantSettings) error    { return nil }
func (nopStore) PutAttackSettings(context.Context, string, json.RawMessage, json.RawMessage) error {
	return nil
}

// notifyingStore is nopStore telling other replicas, as sqlstore does on
// PostgreSQL.
type notifyingStore struct {
	nopStore
	notified int
	ctxErr   error
}

func (n *notifyingStore) ConfigChanged(ctx context.Context) {
	n.notified++
	n.ctxErr = ctx.Err()
}

// A method promoted from the embedded store.Store reaches nopStore without
// touching the cache, so seeing the generation advance and one
// notification proves that the wrapper declares the method itself,
// invalidates and tells other replicas. Reads is checked too: callers
// holding it write through it, and a method it declared would shadow
// Writes' override.
func TestCachedWritesInvalidate(t *testing.T) {
	var cached []string
	for name, k := range storeMethods {
		if k == cachedWrite {
			cached = append(cached, name)
		}
	}
	slices.Sort(cached)
	wrappers := []struct {
		name string
		wrap func(*Cache, store.Store) store.Store
	}{
		{"Writes", func(c *Cache, st store.Store) store.Store { return c.Writes(st) }},
		{"Reads", func(c *Cache, st store.Store) store.Store { return c.Reads(st) }},
	}
	for _, name := range cached {
		for _, w := range wrappers {
			t.Run(w.name+"."+name, func(t *testing.T) {
				c := New(DefaultTTL, nil)
				c.settings[struct{}{}] = timed[*store.TenantSettings]{v: &store.TenantSettings{}}
				st := &notifyingStore{}
				if err := callZero(w.wrap(c, st), name); err != nil {
					t.Fatal(err)
				}
				if c.gen != 1 || len(c.settings) != 0 {
					t.Fatalf("%s did not clear the cache (generation %d, %d settings kept): "+
						"Writes must override it and invalidate", name, c.gen, len(c.settings))
				}
				if st.notified != 1 {
					t.Fatalf("%s notified other replicas %d times, want 1", name, st.notified)
				}
			})
		}
	}
}

// callZero calls st's method name with a background context and zero
// values for the other arguments, and returns its error result.
func callZero(st store.Store, name string) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%s panicked (%v): nopStore must implement it", name, p)
		}
	}()
	m := reflect.ValueOf(st).MethodByName(name)
	args := []reflect.Value{reflect.ValueOf(context.Background())}
	for i := 1; i < m.Type().NumIn(); i++ {
		args = append(args, reflect.Zero(m.Type().In(i)))
	}
	out := m.Call(args)
	if e := out[len(out)-1].Interface(); e != nil {
		return fmt.Errorf("%s: %w", name, e.(error))
	}
	return nil
}

// TestNotifyOutlivesCaller: a caller that gave up after its write was
// committed must not keep the other replicas from hearing of it.
func TestNotifyOutlivesCaller(t *testing.T) {
	st := &notifyingStore{}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := New(DefaultTTL, nil).Writes(st).DeleteClient(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	if st.notified != 1 || st.ctxErr != nil {
		t.Fatalf("notified %d times with a context ending in %v, want once with a live context", st.notified, st.ctxErr)
	}
}
