package cache

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// fakeStore counts client reads; every other method panics (nil Store).
type fakeStore struct {
	store.Store
	name  string
	reads int
}

func (f *fakeStore) GetClient(ctx context.Context, id string) (*store.Client, error) {
	f.reads++
	if id != "app" {
		return nil, store.ErrNotFound
	}
	return &store.Client{ClientID: id, Name: f.name}, nil
}

func (f *fakeStore) UpdateClient(ctx context.Context, c *store.Client) error {
	f.name = c.Name
	return nil
}

func TestReadsCacheUntilTTL(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1000, 0)
	c := New(5*time.Second, func() time.Time { return now })
	f := &fakeStore{name: "one"}
	r := c.Reads(f)
	for range 3 {
		if cl, err := r.GetClient(ctx, "app"); err != nil || cl.Name != "one" {
			t.Fatalf("GetClient = %v, %v", cl, err)
		}
	}
	if f.reads != 1 {
		t.Fatalf("store read %d times, want 1", f.reads)
	}
	f.name = "changed elsewhere"
	now = now.Add(5 * time.Second)
	if cl, _ := r.GetClient(ctx, "app"); cl.Name != "changed elsewhere" {
		t.Fatalf("after the TTL got %q", cl.Name)
	}
}

func TestWritesInvalidate(t *testing.T) {
	ctx := context.Background()
	c := New(time.Hour, nil)
	f := &fakeStore{name: "one"}
	r, w := c.Reads(f), c.Writes(f)
	if _, err := r.GetClient(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	if err := w.UpdateClient(ctx, &store.Client{ClientID: "app", Name: "two"}); err != nil {
		t.Fatal(err)
	}
	if cl, _ := r.GetClient(ctx, "app"); cl.Name != "two" {
		t.Fatalf("after a write through Writes got %q", cl.Name)
	}
	// Writes through Reads invalidate too.
	if err := r.UpdateClient(ctx, &store.Client{ClientID: "app", Name: "three"}); err != nil {
		t.Fatal(err)
	}
	if cl, _ := r.GetClient(ctx, "app"); cl.Name != "three" {
		t.Fatalf("after a write through Reads got %q", cl.Name)
	}
}

func TestErrorsAndCallerEditsAreNotKept(t *testing.T) {
	ctx := context.Background()
	c := New(time.Hour, nil)
	f := &fakeStore{name: "one"}
	r := c.Reads(f)
	for range 2 {
		if _, err := r.GetClient(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("err = %v", err)
		}
	}
	if f.reads != 2 {
		t.Fatalf("a not-found answer was cached")
	}
	cl, _ := r.GetClient(ctx, "app")
	cl.Name = "edited by a caller"
	if again, _ := r.GetClient(ctx, "app"); again.Name != "one" {
		t.Fatalf("a caller's edit reached the cache: %q", again.Name)
	}
}

// A load that overlapped an invalidation may hold the row as it was
// before the write: it must not be kept.
func TestLoadOverlappingWriteIsNotKept(t *testing.T) {
	ctx := context.Background()
	c := New(time.Hour, nil)
	f := &fakeStore{name: "old"}
	_, err := lookup(c, c.clients, "app", func() (*store.Client, error) {
		v, err := f.GetClient(ctx, "app")
		c.Invalidate() // a write commits while the read is in flight
		return v, err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.clients["app"]; ok {
		t.Fatal("a read that overlapped a write was cached")
	}
}

// Each map is bounded whatever keys the lookups use.
func TestEntriesAreBounded(t *testing.T) {
	c := New(time.Hour, nil)
	for i := range 2*maxEntries + 1 {
		if _, err := lookup(c, c.clients, strconv.Itoa(i), func() (*store.Client, error) { return &store.Client{}, nil }); err != nil {
			t.Fatal(err)
		}
		if len(c.clients) > maxEntries {
			t.Fatalf("%d entries after %d lookups, want at most %d", len(c.clients), i+1, maxEntries)
		}
	}
}
