package cache_test

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/cache"
	"github.com/gatehouse/gatehouse/internal/store/sqlstore"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

// pausing is a real store whose next GetClient, once armed, holds the
// row it read until released: a token request's read still in flight
// while an administrator's write commits and clears the cache.
type pausing struct {
	store.Store
	armed   atomic.Bool
	loaded  chan struct{}
	release chan struct{}
}

func newPausing(st store.Store) *pausing {
	p := &pausing{Store: st, loaded: make(chan struct{}), release: make(chan struct{})}
	p.armed.Store(true)
	return p
}

func (p *pausing) GetClient(ctx context.Context, clientID string) (*store.Client, error) {
	c, err := p.Store.GetClient(ctx, clientID)
	if p.armed.CompareAndSwap(true, false) {
		p.loaded <- struct{}{}
		<-p.release
	}
	return c, err
}

func workerClient(secret string) *store.Client {
	return &store.Client{ClientID: "app", Name: "App", AppType: "non_interactive", SecretEnc: []byte(secret),
		GrantTypes: []string{"client_credentials"}, TokenEndpointAuthMethod: "client_secret_post"}
}

// inFlightRead starts readsB.GetClient("app") through p and returns, once
// p has read the row, a channel delivering what that read returns.
func inFlightRead(t *testing.T, reads *cache.Reads, p *pausing) <-chan *store.Client {
	t.Helper()
	got := make(chan *store.Client, 1)
	go func() {
		c, err := reads.GetClient(context.Background(), "app")
		if err != nil {
			t.Error(err)
		}
		got <- c
	}()
	select {
	case <-p.loaded:
	case <-time.After(5 * time.Second):
		t.Fatal("the read never reached the store")
	}
	return got
}

// wantSecret requires reads to return secret: the TTL is an hour, so a
// row kept by the in-flight read would still be returned.
func wantSecret(t *testing.T, reads *cache.Reads, secret string) {
	t.Helper()
	c, err := reads.GetClient(t.Context(), "app")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(c.SecretEnc, []byte(secret)) {
		t.Fatalf("the cache serves secret %q after the rotation to %q: a read that overlapped the write was kept", c.SecretEnc, secret)
	}
}

// TestInFlightReadOverlappingLocalWrite: on each backend, a token
// request's read of a client that was in flight while this process's
// Management API rotated the client's secret returns the old row to its
// own request, but does not put it back into the cache the rotation
// cleared.
func TestInFlightReadOverlappingLocalWrite(t *testing.T) {
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			ctx := t.Context()
			st := storetest.Open(t, backend)
			c := cache.New(time.Hour, nil)
			writes := c.Writes(st)
			if err := writes.CreateClient(ctx, workerClient("secret-1")); err != nil {
				t.Fatal(err)
			}
			p := newPausing(st)
			reads := c.Reads(p)
			got := inFlightRead(t, reads, p)

			if err := writes.SetClientSecret(ctx, "app", []byte("secret-2")); err != nil {
				t.Fatal(err)
			}
			close(p.release)
			if old := <-got; !bytes.Equal(old.SecretEnc, []byte("secret-1")) {
				t.Fatalf("the in-flight read returned %q, want the row it read", old.SecretEnc)
			}
			wantSecret(t, reads, "secret-2")
		})
	}
}

// TestInFlightReadOverlappingOtherReplicasWrite: replica B's read of a
// client was in flight while replica A rotated the client's secret and B's
// listener heard of it. What B read before the rotation must not outlive
// the notification in B's cache.
func TestInFlightReadOverlappingOtherReplicasWrite(t *testing.T) {
	ctx := t.Context()
	stA, stB := twoReplicas(t)
	writesA := cache.New(time.Hour, nil).Writes(stA)
	cacheB := cache.New(time.Hour, nil)
	pB := newPausing(stB)
	readsB := cacheB.Reads(pB)
	heard := make(chan struct{}, 16)
	lctx, stop := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		stB.Listen(lctx, sqlstore.Changes{Config: func() {
			cacheB.Invalidate()
			heard <- struct{}{}
		}})
	}()
	t.Cleanup(func() {
		stop()
		<-stopped
	})
	waitHeard := func(what string) {
		t.Helper()
		select {
		case <-heard:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: replica B heard nothing", what)
		}
	}
	waitHeard("listening")

	if err := writesA.CreateClient(ctx, workerClient("secret-1")); err != nil {
		t.Fatal(err)
	}
	waitHeard("created")
	got := inFlightRead(t, readsB, pB)

	if err := writesA.SetClientSecret(ctx, "app", []byte("secret-2")); err != nil {
		t.Fatal(err)
	}
	waitHeard("rotated")
	close(pB.release)
	if old := <-got; !bytes.Equal(old.SecretEnc, []byte("secret-1")) {
		t.Fatalf("the in-flight read returned %q, want the row it read", old.SecretEnc)
	}
	wantSecret(t, readsB, "secret-2")
}
