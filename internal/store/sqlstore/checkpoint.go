package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Checkpoints of the SQLite WAL run on a connection of their own, off the
// writer. SQLite checkpoints by default in the commit that takes the WAL
// past 1 000 pages, on the committing connection: copying the pages and
// two fsyncs held up the one writer, and every login queued behind it
// waited. In the login benchmark at 100 and 200 logins/s that stall was
// most of the added p99 (9.9 and 10.9 ms, against 4.6 and 6.3 ms with no
// checkpoint in the run; docs/performance.md, seventh session).
//
// A PASSIVE checkpoint never waits for the writer, and the writer never
// waits for it. It copies the frames committed when it starts; when it has
// copied them all, the next write starts the WAL from its beginning
// again. Under writes that never pause it may not catch up, and the WAL
// would grow with every page written: past walFullFrames the writer
// checkpoints once itself, between two group commits, as SQLite would
// have done every 1 000 pages (nothing writes while it copies, so it
// catches up). That stall is rare: in a test with eight writers that
// never paused the WAL peaked at ~100 MB without it.

const (
	checkpointEvery   = 500 * time.Millisecond
	walFullFrames     = 16384 // 64 MiB of 4 KiB pages
	checkpointTimeout = 30 * time.Second
)

type checkpointer struct {
	db     *sql.DB
	every  time.Duration
	full   int64       // frames past which the writer checkpoints
	isFull atomic.Bool // set here, cleared by the writer's checkpoint
	logger *slog.Logger
	stop   chan struct{}
	done   chan struct{}
	closed sync.Once
}

func startCheckpointer(db *sql.DB, logger *slog.Logger, every time.Duration, full int64) *checkpointer {
	c := &checkpointer{db: db, every: every, full: full, logger: logger, stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c
}

func (c *checkpointer) run() {
	defer close(c.done)
	t := time.NewTicker(c.every)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		c.tick()
	}
}

// tick is one background checkpoint; a WAL it finds past full is left
// to the writer (checkpointIfFull).
func (c *checkpointer) tick() {
	frames, _, err := checkpoint(c.db)
	if err != nil {
		c.logger.Warn("sqlite: checkpointing the WAL failed; it will be tried again", "error", err)
		return
	}
	if frames > c.full {
		c.isFull.Store(true)
	}
}

// checkpoint runs a PASSIVE checkpoint on db and returns the frames the
// WAL held and how many of them are now in the database. One that found
// another checkpoint running is not an error: the next try goes on.
func checkpoint(db *sql.DB) (frames, copied int64, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), checkpointTimeout)
	defer cancel()
	var busy int64
	if err := db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied); err != nil {
		return 0, 0, fmt.Errorf("wal_checkpoint: %w", err)
	}
	return frames, copied, nil
}

// checkpointIfFull is the writer's own checkpoint of a full WAL (see
// above), run by the group commit between two batches.
func (s *Store) checkpointIfFull() {
	c := s.checkpoints
	if c == nil || !c.isFull.Load() {
		return
	}
	frames, copied, err := checkpoint(s.write)
	switch {
	case err != nil:
		c.logger.Warn("sqlite: checkpointing a full WAL failed; it will be tried again", "error", err)
	case copied == frames:
		c.isFull.Store(false)
	}
}

// close stops the checkpoints; a Store may be closed more than once.
func (c *checkpointer) close() error {
	var err error
	c.closed.Do(func() {
		close(c.stop)
		<-c.done
		err = c.db.Close()
	})
	return err
}
