// Package cache keeps, for a few seconds, what every token request reads
// but an administrator rarely changes: clients, connections and their
// enablement, APIs, client grants, tenant and attack-protection settings.
//
// Writes made through this process (the Management API) clear the cache at
// once and, on PostgreSQL, tell the other replicas sharing the database to
// clear theirs; the TTL bounds what a lost notification leaves stale
// (docs/architecture.md).
package cache

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// DefaultTTL bounds how stale another replica's write may look here when
// its notification is lost.
const DefaultTTL = 5 * time.Second

// notifyTimeout bounds telling other replicas about a write; past the TTL
// the notification no longer matters.
const notifyTimeout = DefaultTTL

// maxEntries bounds each map: lookups of names that keep changing (an
// attacker's made-up client_ids never reach a map, but realms and
// audiences of existing rows could) cannot grow it without limit.
const maxEntries = 10000

// Cache is the shared state of Reads and Writes.
type Cache struct {
	ttl time.Duration
	now func() time.Time

	mu sync.Mutex
	// gen counts invalidations: a load that overlapped one is not kept,
	// since it may have read the row before the write.
	gen         uint64
	clients     map[string]timed[*store.Client]
	connections map[string]timed[*store.Connection]
	enabled     map[[2]string]timed[bool]
	apis        map[string]timed[*store.ResourceServer]
	grants      map[[2]string]timed[*store.ClientGrant]
	attack      map[string]timed[json.RawMessage]
	settings    map[struct{}]timed[*store.TenantSettings]
}

type timed[V any] struct {
	v   V
	exp time.Time
}

// New returns an empty cache whose entries live ttl; now is time.Now when
// nil.
func New(ttl time.Duration, now func() time.Time) *Cache {
	if now == nil {
		now = time.Now
	}
	return &Cache{
		ttl: ttl, now: now,
		clients:     map[string]timed[*store.Client]{},
		connections: map[string]timed[*store.Connection]{},
		enabled:     map[[2]string]timed[bool]{},
		apis:        map[string]timed[*store.ResourceServer]{},
		grants:      map[[2]string]timed[*store.ClientGrant]{},
		attack:      map[string]timed[json.RawMessage]{},
		settings:    map[struct{}]timed[*store.TenantSettings]{},
	}
}

// Invalidate forgets every entry. Writes are rare, so one write clears
// everything rather than working out which entries it touched (deleting a
// client also removes its grants and enablements).
func (c *Cache) Invalidate() {
	c.mu.Lock()
	c.gen++
	clear(c.clients)
	clear(c.connections)
	clear(c.enabled)
	clear(c.apis)
	clear(c.grants)
	clear(c.attack)
	clear(c.settings)
	c.mu.Unlock()
}

// lookup returns m[key] while fresh, else loads it. Errors (ErrNotFound
// included) are not kept.
func lookup[K comparable, V any](c *Cache, m map[K]timed[V], key K, load func() (V, error)) (V, error) {
	now := c.now()
	c.mu.Lock()
	e, ok := m[key]
	gen := c.gen
	c.mu.Unlock()
	if ok && now.Before(e.exp) {
		return e.v, nil
	}
	v, err := load()
	if err != nil {
		return v, err
	}
	c.mu.Lock()
	if c.gen == gen {
		if len(m) >= maxEntries {
			clear(m)
		}
		m[key] = timed[V]{v: v, exp: now.Add(c.ttl)}
	}
	c.mu.Unlock()
	return v, nil
}

// shallow hands out a copy so that a caller assigning a field cannot
// change what the next request reads; slices and maps are shared and
// must not be modified.
func shallow[T any](v *T) *T {
	cp := *v
	return &cp
}

// Notifier tells the other processes sharing a database that cached data
// changed (sqlstore.Store on PostgreSQL). It reports no error: the write
// it follows is committed and must not look failed.
type Notifier interface {
	ConfigChanged(ctx context.Context)
}

// Writes is st with every write to cached data clearing the cache, and
// other replicas' when st is a Notifier; its reads go to st. The Management
// API uses it, so that what it shows and read-modify-writes is never stale.
type Writes struct {
	store.Store
	c      *Cache
	notify Notifier // nil when st is not a Notifier
}

// Writes wraps st.
func (c *Cache) Writes(st store.Store) *Writes {
	n, _ := st.(Notifier)
	return &Writes{Store: st, c: c, notify: n}
}

// invalidate runs after every cached write, failed ones included, like the
// local clearing: a write whose commit reply was lost may have happened.
func (w *Writes) invalidate(ctx context.Context, err error) error {
	w.c.Invalidate()
	if w.notify != nil {
		// The write is done even if the caller has gone away since.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), notifyTimeout)
		defer cancel()
		w.notify.ConfigChanged(ctx)
	}
	return err
}

func (w *Writes) CreateClient(ctx context.Context, cl *store.Client) error {
	return w.invalidate(ctx, w.Store.CreateClient(ctx, cl))
}

func (w *Writes) UpdateClient(ctx context.Context, cl *store.Client) error {
	return w.invalidate(ctx, w.Store.UpdateClient(ctx, cl))
}

func (w *Writes) SetClientSecret(ctx context.Context, clientID string, secretEnc []byte) error {
	return w.invalidate(ctx, w.Store.SetClientSecret(ctx, clientID, secretEnc))
}

func (w *Writes) DeleteClient(ctx context.Context, clientID string) error {
	return w.invalidate(ctx, w.Store.DeleteClient(ctx, clientID))
}

// PurgeDeletedOwnerTokens may delete a client or a connection; most runs
// find nothing to do, and leave the cache alone.
func (w *Writes) PurgeDeletedOwnerTokens(ctx context.Context, limit int) (int, bool, error) {
	n, more, err := w.Store.PurgeDeletedOwnerTokens(ctx, limit)
	if n > 0 || err != nil {
		err = w.invalidate(ctx, err)
	}
	return n, more, err
}

func (w *Writes) CreateConnection(ctx context.Context, cn *store.Connection) error {
	return w.invalidate(ctx, w.Store.CreateConnection(ctx, cn))
}

func (w *Writes) PatchConnection(ctx context.Context, id string, patch func(*store.Connection, store.ClientLookup) error) (*store.Connection, error) {
	c, err := w.Store.PatchConnection(ctx, id, patch)
	return c, w.invalidate(ctx, err)
}

func (w *Writes) DeleteConnection(ctx context.Context, id string) error {
	return w.invalidate(ctx, w.Store.DeleteConnection(ctx, id))
}

func (w *Writes) SetConnectionClients(ctx context.Context, connectionID string, status map[string]bool) error {
	return w.invalidate(ctx, w.Store.SetConnectionClients(ctx, connectionID, status))
}

func (w *Writes) PutTenantSettings(ctx context.Context, s *store.TenantSettings) error {
	return w.invalidate(ctx, w.Store.PutTenantSettings(ctx, s))
}

func (w *Writes) CreateResourceServer(ctx context.Context, rs *store.ResourceServer) error {
	return w.invalidate(ctx, w.Store.CreateResourceServer(ctx, rs))
}

func (w *Writes) UpdateResourceServer(ctx context.Context, rs *store.ResourceServer) error {
	return w.invalidate(ctx, w.Store.UpdateResourceServer(ctx, rs))
}

func (w *Writes) DeleteResourceServer(ctx context.Context, id string) error {
	return w.invalidate(ctx, w.Store.DeleteResourceServer(ctx, id))
}

func (w *Writes) CreateClientGrant(ctx context.Context, g *store.ClientGrant) error {
	return w.invalidate(ctx, w.Store.CreateClientGrant(ctx, g))
}

func (w *Writes) UpdateClientGrant(ctx context.Context, g *store.ClientGrant) error {
	return w.invalidate(ctx, w.Store.UpdateClientGrant(ctx, g))
}

func (w *Writes) DeleteClientGrant(ctx context.Context, id string) error {
	return w.invalidate(ctx, w.Store.DeleteClientGrant(ctx, id))
}

func (w *Writes) PutAttackSettings(ctx context.Context, name string, read, doc json.RawMessage) error {
	return w.invalidate(ctx, w.Store.PutAttackSettings(ctx, name, read, doc))
}

// Reads is Writes with the token endpoint's hot reads served from the
// cache.
type Reads struct {
	*Writes
}

// Reads wraps st.
func (c *Cache) Reads(st store.Store) *Reads { return &Reads{Writes: c.Writes(st)} }

func (r *Reads) GetClient(ctx context.Context, clientID string) (*store.Client, error) {
	v, err := lookup(r.c, r.c.clients, clientID, func() (*store.Client, error) { return r.Store.GetClient(ctx, clientID) })
	if err != nil {
		return nil, err
	}
	return shallow(v), nil
}

func (r *Reads) GetConnectionByName(ctx context.Context, name string) (*store.Connection, error) {
	v, err := lookup(r.c, r.c.connections, name, func() (*store.Connection, error) { return r.Store.GetConnectionByName(ctx, name) })
	if err != nil {
		return nil, err
	}
	return shallow(v), nil
}

func (r *Reads) ConnectionEnabledForClient(ctx context.Context, connectionID, clientID string) (bool, error) {
	return lookup(r.c, r.c.enabled, [2]string{connectionID, clientID}, func() (bool, error) {
		return r.Store.ConnectionEnabledForClient(ctx, connectionID, clientID)
	})
}

func (r *Reads) GetResourceServerByIdentifier(ctx context.Context, identifier string) (*store.ResourceServer, error) {
	v, err := lookup(r.c, r.c.apis, identifier, func() (*store.ResourceServer, error) {
		return r.Store.GetResourceServerByIdentifier(ctx, identifier)
	})
	if err != nil {
		return nil, err
	}
	return shallow(v), nil
}

func (r *Reads) FindClientGrant(ctx context.Context, clientID, audience string) (*store.ClientGrant, error) {
	v, err := lookup(r.c, r.c.grants, [2]string{clientID, audience}, func() (*store.ClientGrant, error) {
		return r.Store.FindClientGrant(ctx, clientID, audience)
	})
	if err != nil {
		return nil, err
	}
	return shallow(v), nil
}

func (r *Reads) GetTenantSettings(ctx context.Context) (*store.TenantSettings, error) {
	v, err := lookup(r.c, r.c.settings, struct{}{}, func() (*store.TenantSettings, error) { return r.Store.GetTenantSettings(ctx) })
	if err != nil {
		return nil, err
	}
	return shallow(v), nil
}

// GetAttackSettings may return nil (never stored), which is kept too.
func (r *Reads) GetAttackSettings(ctx context.Context, name string) (json.RawMessage, error) {
	return lookup(r.c, r.c.attack, name, func() (json.RawMessage, error) { return r.Store.GetAttackSettings(ctx, name) })
}
