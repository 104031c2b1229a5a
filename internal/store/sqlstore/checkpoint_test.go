package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The writer never checkpoints; the checkpointer copies the WAL into the
// database while writes go on, and keeps the WAL bounded under writes
// that never pause.
func TestCheckpointsOffTheWriter(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "c.db")
	s, err := Open(ctx, "sqlite:"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var auto int
	if err := s.write.QueryRowContext(ctx, "PRAGMA wal_autocheckpoint").Scan(&auto); err != nil || auto != 0 {
		t.Fatalf("writer's wal_autocheckpoint = %d, %v; want 0", auto, err)
	}
	SetCheckpointing(s, 10*time.Millisecond, 256)
	if _, err := s.write.ExecContext(ctx, "CREATE TABLE c (k TEXT PRIMARY KEY, v BLOB)"); err != nil {
		t.Fatal(err)
	}
	size := func(p string) int64 {
		fi, err := os.Stat(p)
		if err != nil {
			return 0
		}
		return fi.Size()
	}
	before := size(path)

	var (
		n       atomic.Int64
		maxWAL  atomic.Int64
		wg      sync.WaitGroup
		stop    = make(chan struct{})
		written = make(chan error, 8)
	)
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				v := make([]byte, 2048)
				_, _ = rand.Read(v)
				err := s.inGroupTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
					_, err := tx.ExecContext(ctx, "INSERT INTO c (k, v) VALUES ($1, $2)", fmt.Sprintf("%d-%d", w, i), v)
					return err
				})
				if err != nil {
					written <- err
					return
				}
				n.Add(1)
			}
		})
	}
	// Three times the bound below is written, however long it takes.
	const limit = 16 << 20
	for deadline := time.Now().Add(30 * time.Second); n.Load()*2048 < 3*limit && time.Now().Before(deadline); {
		if w := size(path + "-wal"); w > maxWAL.Load() {
			maxWAL.Store(w)
		}
		time.Sleep(2 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	close(written)
	for err := range written {
		t.Fatal(err)
	}
	// Every row's 2 KiB is in the database file, not only in the WAL, once
	// the checkpointer has caught up: nothing closed the store.
	want := before + n.Load()*2048
	for end := time.Now().Add(5 * time.Second); size(path) < want; {
		if time.Now().After(end) {
			t.Fatalf("database file %d bytes after %d rows of 2 KiB: the WAL was not checkpointed", size(path), n.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A WAL that never restarts grows by every page written (~100 MB here
	// without the writer's own checkpoint); this one is checkpointed by
	// the writer past 256 frames, give or take a tick's writes.
	if maxWAL.Load() > limit || n.Load()*2048 < 3*limit {
		t.Fatalf("WAL peaked at %d bytes while %d rows of 2 KiB were written; want under %d, with three times that written",
			maxWAL.Load(), n.Load(), limit)
	}
}

// SetCheckpointing restarts s's checkpointer with another period and
// threshold of a full WAL. The Store keeps its checkpointer: the group
// commit reads it after every batch.
func SetCheckpointing(s *Store, every time.Duration, fullFrames int64) {
	c := s.checkpoints
	close(c.stop)
	<-c.done
	c.every, c.full = every, fullFrames
	c.stop, c.done = make(chan struct{}), make(chan struct{})
	go c.run()
}
