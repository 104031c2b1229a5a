package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// openGroupTest opens a SQLite store with one table of keys.
func openGroupTest(t testing.TB) *Store {
	t.Helper()
	s, err := Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "g.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.write.ExecContext(t.Context(), "CREATE TABLE g (k TEXT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	return s
}

func keys(t testing.TB, s *Store) map[string]bool {
	t.Helper()
	rows, err := s.read.QueryContext(t.Context(), "SELECT k FROM g")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]bool{}
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			t.Fatal(err)
		}
		got[k] = true
	}
	return got
}

func insert(ctx context.Context, tx *sql.Tx, k string) error {
	_, err := tx.ExecContext(ctx, "INSERT INTO g (k) VALUES ($1)", k)
	return err
}

// hold occupies the committer until the returned function is called, so
// that the jobs queued meanwhile form one batch.
func hold(t *testing.T, s *Store) (release func()) {
	t.Helper()
	started, done := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		err := s.inGroupTx(t.Context(), func(ctx context.Context, tx *sql.Tx) error {
			close(started)
			<-done
			return nil
		})
		if err != nil {
			t.Error(err)
		}
	})
	<-started
	return func() { close(done); wg.Wait() }
}

// queue runs n jobs at once and returns their errors; the committer is
// held while they queue, and released once every sender is about to block
// on it (plus a pause for the last ones to get there), so that they make
// one batch.
func queue(t *testing.T, s *Store, release func(), n int, ctxOf func(i int) context.Context, job func(i int) func(context.Context, *sql.Tx) error) []error {
	t.Helper()
	errs := make([]error, n)
	var (
		wg      sync.WaitGroup
		arrived sync.WaitGroup
	)
	arrived.Add(n)
	for i := range n {
		wg.Go(func() {
			arrived.Done()
			errs[i] = s.inGroupTx(ctxOf(i), job(i))
		})
	}
	arrived.Wait()
	time.Sleep(50 * time.Millisecond)
	release()
	wg.Wait()
	return errs
}

func TestGroupCommitBatchesAndIsolatesFailures(t *testing.T) {
	s := openGroupTest(t)
	if _, err := s.write.ExecContext(t.Context(), "INSERT INTO g (k) VALUES ('taken')"); err != nil {
		t.Fatal(err)
	}
	const n = 40
	errBoom := errors.New("boom")
	var (
		mu      sync.Mutex
		maxInTx int
	)
	errs := queue(t, s, hold(t, s), n, func(int) context.Context { return t.Context() }, func(i int) func(context.Context, *sql.Tx) error {
		return func(ctx context.Context, tx *sql.Tx) error {
			k := fmt.Sprint(i)
			if i%7 == 3 {
				k = "taken"
			}
			if err := insert(ctx, tx, k); err != nil {
				return err
			}
			var inTx int
			if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM g").Scan(&inTx); err != nil {
				return err
			}
			mu.Lock()
			maxInTx = max(maxInTx, inTx)
			mu.Unlock()
			if i%5 == 4 {
				return errBoom // after its insert: the savepoint must undo it
			}
			return nil
		}
	})

	got := keys(t, s)
	for i, err := range errs {
		k := fmt.Sprint(i)
		switch {
		case i%7 == 3:
			if !s.d.isUnique(err) {
				t.Errorf("job %d: err %v, want a unique violation", i, err)
			}
		case i%5 == 4:
			if !errors.Is(err, errBoom) || got[k] {
				t.Errorf("job %d: err %v, row kept %v; want errBoom and no row", i, err, got[k])
			}
		default:
			if err != nil || !got[k] {
				t.Errorf("job %d: err %v, row %v; want committed", i, err, got[k])
			}
		}
	}
	// Inside one batch a job sees the rows of the jobs before it, not yet
	// committed: more than "taken" and its own row means jobs were grouped.
	t.Logf("largest count seen inside a job: %d of %d", maxInTx, n+1)
	if maxInTx <= 2 {
		t.Errorf("no job saw another's row: the %d queued jobs were not grouped", n)
	}
}

// A caller that gives up before its job starts gets its context's error,
// and the job never runs; one whose context ends while its job runs gets
// the job's outcome, and the others in the batch are unaffected.
func TestGroupCommitCancellation(t *testing.T) {
	s := openGroupTest(t)
	release := hold(t, s)
	early, cancelEarly := context.WithCancel(t.Context())
	ran := make(chan struct{}, 1)
	var wg sync.WaitGroup
	var earlyErr error
	wg.Go(func() {
		earlyErr = s.inGroupTx(early, func(ctx context.Context, tx *sql.Tx) error {
			ran <- struct{}{}
			return insert(ctx, tx, "early")
		})
	})
	time.Sleep(20 * time.Millisecond)
	cancelEarly()
	wg.Wait()
	if !errors.Is(earlyErr, context.Canceled) {
		t.Errorf("cancelled before its job started: %v, want context.Canceled", earlyErr)
	}

	late, cancelLate := context.WithCancel(t.Context())
	defer cancelLate()
	errs := queue(t, s, release, 10, func(i int) context.Context {
		if i == 0 {
			return late
		}
		return t.Context()
	}, func(i int) func(context.Context, *sql.Tx) error {
		return func(ctx context.Context, tx *sql.Tx) error {
			if i == 0 {
				cancelLate()
				// What it runs after its caller gave up still runs: an
				// interrupted write would roll back the whole batch.
				return insert(ctx, tx, "late")
			}
			return insert(ctx, tx, fmt.Sprint(i))
		}
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("job %d: %v", i, err)
		}
	}
	got := keys(t, s)
	if got["early"] || len(ran) != 0 {
		t.Error("the job of a caller that gave up before it started ran")
	}
	if !got["late"] || len(got) != 10 {
		t.Errorf("rows %v, want late and 1..9", got)
	}
}

func TestGroupCommitAfterClose(t *testing.T) {
	s := openGroupTest(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	err := s.inGroupTx(t.Context(), func(ctx context.Context, tx *sql.Tx) error { return insert(ctx, tx, "x") })
	if !errors.Is(err, errStoreClosed) {
		t.Errorf("write after Close: %v, want errStoreClosed", err)
	}
}

// A job that takes the batch's transaction with it (here by ending it; in
// production an I/O error or a full disk does) fails the whole batch: no
// caller is told of a write that was rolled back, and the next batch works.
func TestGroupCommitLostBatch(t *testing.T) {
	s := openGroupTest(t)
	errs := queue(t, s, hold(t, s), 8, func(int) context.Context { return t.Context() }, func(i int) func(context.Context, *sql.Tx) error {
		return func(ctx context.Context, tx *sql.Tx) error {
			if err := insert(ctx, tx, fmt.Sprint(i)); err != nil {
				return err
			}
			if i == 3 {
				_, err := tx.ExecContext(ctx, "ROLLBACK")
				return err
			}
			return nil
		}
	})
	got := keys(t, s)
	for i, err := range errs {
		if err == nil && !got[fmt.Sprint(i)] {
			t.Errorf("job %d reported success, but its row is not there", i)
		}
	}
	if errs[3] == nil {
		t.Error("the job that ended the transaction reported success")
	}
	err := s.inGroupTx(t.Context(), func(ctx context.Context, tx *sql.Tx) error { return insert(ctx, tx, "after") })
	if err != nil || !keys(t, s)["after"] {
		t.Errorf("write after a lost batch: %v", err)
	}
}

// BenchmarkGroupCommit compares 64 writers each committing small
// transactions (an upsert of its own row, as a login's counters are)
// through the group commit and one transaction each.
//
//	go test -run '^$' -bench GroupCommit -cpu 2 ./internal/store/sqlstore/
func BenchmarkGroupCommit(b *testing.B) {
	for _, bc := range []struct {
		name string
		run  func(s *Store, ctx context.Context, fn func(context.Context, *sql.Tx) error) error
	}{
		{"grouped", func(s *Store, ctx context.Context, fn func(context.Context, *sql.Tx) error) error {
			return s.inGroupTx(ctx, fn)
		}},
		{"alone", func(s *Store, ctx context.Context, fn func(context.Context, *sql.Tx) error) error {
			return s.inTx(ctx, func(tx *sql.Tx) error { return fn(ctx, tx) })
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := openGroupTest(b)
			if _, err := s.write.ExecContext(b.Context(), "CREATE TABLE c (k TEXT PRIMARY KEY, n INTEGER NOT NULL)"); err != nil {
				b.Fatal(err)
			}
			b.SetParallelism(64 / runtime.GOMAXPROCS(0))
			var next atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				k := fmt.Sprint(next.Add(1))
				for pb.Next() {
					err := bc.run(s, b.Context(), func(ctx context.Context, tx *sql.Tx) error {
						_, err := tx.ExecContext(ctx, "INSERT INTO c (k, n) VALUES ($1, 1) ON CONFLICT (k) DO UPDATE SET n = n + 1", k)
						return err
					})
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
