package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The writer never checkpoints on its own; a background tick copies the
// WAL into the database file and, past the threshold, leaves the WAL to
// the writer, whose checkpoint between two batches lets the WAL start
// over, so that it stops growing. Each step is driven by the test, not
// by the clock: a loaded machine delays ticks.
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
	// No tick of its own during the test; 64 frames make the WAL full.
	SetCheckpointing(s, time.Hour, 64)
	c := s.checkpoints
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
	n := 0
	write := func(rows int) {
		t.Helper()
		for range rows {
			v := make([]byte, 2048)
			_, _ = rand.Read(v)
			k := fmt.Sprint(n)
			n++
			if err := s.inGroupTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
				_, err := tx.ExecContext(ctx, "INSERT INTO c (k, v) VALUES ($1, $2)", k, v)
				return err
			}); err != nil {
				t.Fatal(err)
			}
		}
	}

	before := size(path)
	write(500)
	if got := size(path); got > before+64<<10 {
		t.Fatalf("database file grew from %d to %d bytes with no checkpoint run: the writer checkpointed", before, got)
	}
	wal := size(path + "-wal")
	c.tick()
	if got, want := size(path), before+500*2048; got < want {
		t.Fatalf("database file %d bytes after a tick, want at least %d: the WAL was not copied", got, want)
	}
	if !c.isFull.Load() {
		t.Fatal("a tick over a WAL past the threshold did not leave it to the writer")
	}
	// The next batch ends with the writer's checkpoint, run once the
	// batch's callers have their answers; the WAL then starts over, and
	// as many rows again fill about as much of it (a WAL that went on
	// would double).
	write(1)
	for end := time.Now().Add(5 * time.Second); c.isFull.Load(); time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("the writer did not checkpoint a full WAL")
		}
	}
	write(499)
	if got := size(path + "-wal"); got > wal+wal/2 {
		t.Fatalf("WAL file grew from %d to %d bytes after the writer's checkpoint: it did not start over", wal, got)
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
